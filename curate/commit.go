package curate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

const (
	stagingMarker = ".sluice-staging-"
	oldMarker     = ".sluice-old-"
)

// stagingName and oldName are siblings of the output directory <base>; they
// start with "." so readers and the store's watcher ignore them.
func stagingName(base, id string) string { return "." + base + stagingMarker + id }
func oldName(base, id string) string     { return "." + base + oldMarker + id }

// splitOutput returns the local parent directory and base name of an output
// prefix ("curated/X/" → <root>/curated, "X").
func splitOutput(root, output string) (parent, base string) {
	p := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(output, "/")))
	return filepath.Dir(p), filepath.Base(p)
}

// Hooks for crash tests: called between the steps of a local commit.
var (
	testHookAfterOldMoved func() // two-rename fallback: after <base> → -old-
	testHookAfterSwap     func() // after the new output is in place, before cleanup
)

// renameExchange atomically exchanges two paths; errExchangeUnsupported when
// the system or file system cannot. A variable so tests can force the
// two-rename fallback.
var renameExchange = exchange

var errExchangeUnsupported = errors.New("rename exchange not supported")

// commitLocal swaps the staged directory in as the output (see package doc).
func commitLocal(root, output, id string) error {
	parent, base := splitOutput(root, output)
	target := filepath.Join(parent, base)
	staging := filepath.Join(parent, stagingName(base, id))

	_, statErr := os.Lstat(target)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		// First run: a plain rename.
		if err := os.Rename(staging, target); err != nil {
			return fmt.Errorf("curate: commit %q: rename staging dir into place: %w", output, err)
		}
	case statErr != nil:
		return fmt.Errorf("curate: commit %q: %w", output, statErr)
	default:
		err := renameExchange(staging, target)
		if errors.Is(err, errExchangeUnsupported) {
			err = swapTwoRenames(parent, base, id, output)
		} else if err != nil {
			err = fmt.Errorf("curate: commit %q: exchange staging dir with output: %w", output, err)
		}
		if err != nil {
			return err
		}
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("curate: commit %q: sync %s: %w", output, parent, err)
	}
	if testHookAfterSwap != nil {
		testHookAfterSwap()
	}
	// The new output is committed; what remains is the old copy, at the
	// staging name (exchange) or the -old- name (fallback).
	for _, leftover := range []string{staging, filepath.Join(parent, oldName(base, id))} {
		if err := os.RemoveAll(leftover); err != nil {
			return fmt.Errorf("curate: committed %q but could not remove the previous output at %s: %w (Recover removes it on the next run)", output, leftover, err)
		}
	}
	return nil
}

func swapTwoRenames(parent, base, id, output string) error {
	target := filepath.Join(parent, base)
	old := filepath.Join(parent, oldName(base, id))
	if err := os.Rename(target, old); err != nil {
		return fmt.Errorf("curate: commit %q: move previous output aside: %w", output, err)
	}
	if testHookAfterOldMoved != nil {
		testHookAfterOldMoved()
	}
	if err := os.Rename(filepath.Join(parent, stagingName(base, id)), target); err != nil {
		if rbErr := os.Rename(old, target); rbErr != nil {
			return fmt.Errorf("curate: commit %q: rename staging dir into place: %w; restoring the previous output also failed: %v (Recover restores it)", output, err, rbErr)
		}
		return fmt.Errorf("curate: commit %q: rename staging dir into place: %w (previous output restored)", output, err)
	}
	return nil
}

// Recover cleans up after a crashed Run on output. On a local store it
// deletes staging directories, restores the previous output if a crash left
// it moved aside with the output missing, and deletes the previous output's
// leftover copy when the new output is in place. Stores without LocalDir have
// nothing to recover: a crashed commit there leaves no _SUCCESS, and the next
// successful Run deletes the leftover parts. Run calls Recover first, so
// calling it separately (for example at start-up) is optional. It must not
// run while another Run on the same output is in flight.
func Recover(ctx context.Context, st Store, output string) error {
	root := st.LocalDir()
	if root == "" {
		return nil
	}
	if output != "" && !strings.HasSuffix(output, "/") {
		output += "/"
	}
	if err := checkPrefix("output", output); err != nil {
		return err
	}
	parent, base := splitOutput(root, output)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("curate: recover %q: read %s: %w", output, parent, err)
	}
	var stagings, olds []os.DirEntry
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), "."+base+stagingMarker):
			stagings = append(stagings, e)
		case strings.HasPrefix(e.Name(), "."+base+oldMarker):
			olds = append(olds, e)
		}
	}
	target := filepath.Join(parent, base)
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) && len(olds) > 0 {
		// Crash between moving the old output aside and moving the new one
		// in. Restore the newest -old- copy (normally there is exactly one).
		sort.Slice(olds, func(i, j int) bool { return modTime(olds[i]) > modTime(olds[j]) })
		if err := os.Rename(filepath.Join(parent, olds[0].Name()), target); err != nil {
			return fmt.Errorf("curate: recover %q: restore previous output from %s: %w", output, olds[0].Name(), err)
		}
		olds = olds[1:]
	}
	for _, e := range append(stagings, olds...) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("curate: recover %q: %w", output, err)
		}
		if err := os.RemoveAll(filepath.Join(parent, e.Name())); err != nil {
			return fmt.Errorf("curate: recover %q: remove leftover %s: %w", output, e.Name(), err)
		}
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("curate: recover %q: sync %s: %w", output, parent, err)
	}
	return nil
}

func modTime(e os.DirEntry) int64 {
	info, err := e.Info()
	if err != nil {
		return 0
	}
	return info.ModTime().UnixNano()
}

// commitRemote commits on stores without rename (see package doc): delete
// _SUCCESS, upload the staged parts, delete every other object under output
// (the previous run's parts), and write _SUCCESS last. So whenever _SUCCESS
// exists, the output holds exactly one run's parts; a failure or crash at
// any step leaves no _SUCCESS. check, if set, is called before the
// previous parts are deleted and before _SUCCESS is written; its error
// stops the commit there (no _SUCCESS).
func commitRemote(ctx context.Context, st Store, output, stageDir string, names []string, check func(context.Context) error) error {
	recheck := func(step string) error {
		if check == nil {
			return nil
		}
		if err := check(ctx); err != nil {
			return fmt.Errorf("curate: commit %q stopped before %s (the output has no _SUCCESS until a run succeeds): %w", output, step, err)
		}
		return nil
	}
	before, err := st.List(ctx, output)
	if err != nil {
		return fmt.Errorf("curate: commit %q: list: %w", output, err)
	}
	success := output + successName
	for _, ob := range before {
		if ob.Key == success {
			if err := st.Delete(ctx, ob.Key); err != nil {
				return fmt.Errorf("curate: commit %q: delete previous _SUCCESS: %w", output, err)
			}
		}
	}
	keep := map[string]bool{success: true}
	for _, name := range names {
		key := output + name
		keep[key] = true
		f, err := os.Open(path.Join(stageDir, name))
		if err != nil {
			return fmt.Errorf("curate: commit %q: open staged %s: %w", output, name, err)
		}
		err = st.Write(ctx, key, f, ParquetContentType)
		f.Close()
		if err != nil {
			return fmt.Errorf("curate: commit %q: upload %q: %w (the output has no _SUCCESS until a run succeeds)", output, key, err)
		}
	}
	if err := recheck("deleting the previous parts"); err != nil {
		return err
	}
	for _, ob := range before {
		if keep[ob.Key] {
			continue
		}
		if err := st.Delete(ctx, ob.Key); err != nil {
			return fmt.Errorf("curate: commit %q: delete the previous object %q: %w (the output has no _SUCCESS until a run succeeds; the next run deletes it)", output, ob.Key, err)
		}
	}
	if err := recheck("writing _SUCCESS"); err != nil {
		return err
	}
	if err := st.Write(ctx, success, strings.NewReader(""), "application/octet-stream"); err != nil {
		return fmt.Errorf("curate: commit %q: write _SUCCESS: %w (the output has no _SUCCESS until a run succeeds)", output, err)
	}
	return nil
}

func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errSyncUnsupported) {
		return err
	}
	return nil
}

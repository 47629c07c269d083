package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// This file is Watch on a file:// store through inotify (fsnotify): every
// change is looked at when the kernel reports it, instead of at the next
// listing, and every wait ends at the next settle deadline or look at a
// file open for writing. fsnotify reports writes but not closes
// (IN_CLOSE_WRITE is not among its portable events), so a file being
// written is looked at again on a short, growing wait (see consider).

// inotifyAvailable says whether Watch may follow file:// stores with
// fsnotify: on Linux only. fsnotify's other backends are not used: kqueue
// (macOS, BSD) needs an open descriptor per file, which a large lake
// exhausts; those systems poll.
const inotifyAvailable = runtime.GOOS == "linux"

// maxBatch bounds how many inotify events one pass handles, so a storm of
// writes still lets due objects through.
const maxBatch = 4096

// follow watches every directory of the store with inotify, lists the store
// once (the rescan at start), and then looks at each path the kernel
// reports, at each pending object when it is due (its settle deadline, or
// the next look at a file open for writing), and at the whole store again
// every Rescan and after the kernel's event queue overflowed. It returns
// nil when ctx ends, and an error when inotify cannot be used (no inotify
// instance, too many watches for fs.inotify.max_user_watches): Watch then
// polls, keeping what the scanner learnt.
func (sc *scanner) follow(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	d := &dirWatch{s: sc.s, fw: fw, watched: map[string]bool{}}
	if err := d.addTree(ctx, "."); err != nil {
		return err
	}
	r := sc.scan(ctx)
	if ctx.Err() != nil {
		return nil
	}
	sc.log(r.errs)
	lastScan := sc.w.Clock()
	tempMoved := "" // the directory of the last event, if it was a sluice temporary file renamed
	for {
		wait := sc.untilDue(sc.w.Rescan - sc.w.Clock().Sub(lastScan))
		evs, errs, closed := sc.wait(ctx, fw, wait)
		if ctx.Err() != nil {
			return nil
		}
		if closed {
			return errors.New("inotify watcher closed")
		}
		now := sc.w.Clock()
		rescan := now.Sub(lastScan) >= sc.w.Rescan
		for _, err := range errs {
			// An overflow (fs.inotify.max_queued_events) lost events;
			// anything else is unexpected. Either way, list everything.
			sc.w.Logger.Warn("store: inotify reported an error; rescanning the store", "store", sc.s.url, "err", err)
			rescan = true
		}
		var r scanResult
		keys := map[string]bool{}
		for _, ev := range evs {
			rel, ok := d.rel(ev.Name)
			if !ok {
				tempMoved = ""
				continue
			}
			if isTempName(path.Base(rel)) {
				if ev.Has(fsnotify.Rename) {
					tempMoved = path.Dir(rel)
				}
				continue
			}
			// A sluice writer, in this process or another (`sluice put`,
			// a job run), renames its temporary file into place: inotify
			// reports the old name (IN_MOVED_FROM, a Rename) and then, as
			// a rule right after it, the new one (IN_MOVED_TO, a Create).
			// That version is its writer's to announce.
			byWriter := tempMoved != "" && tempMoved == path.Dir(rel) && ev.Has(fsnotify.Create)
			tempMoved = ""
			if (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) && d.watched[rel] {
				d.forget(rel) // a directory went away
				sc.forgetUnder(rel + "/")
			}
			if ev.Has(fsnotify.Create) && d.isDir(rel) {
				// A new directory (or one moved in): watch it, then list
				// it, so files created before the watch are not missed.
				if err := d.addTree(ctx, rel); err != nil {
					return err
				}
				if !rescan {
					sc.list(ctx, rel+"/", now, &r)
				}
				continue
			}
			keys[rel] = true
			if byWriter {
				sc.wrote[rel] = true
			}
		}
		if rescan {
			if err := d.addTree(ctx, "."); err != nil {
				return err
			}
			r = sc.scan(ctx)
			lastScan = now
		} else {
			for k := range sc.links {
				keys[k] = true // a link's target may have changed
			}
			for k, p := range sc.pending {
				if !now.Before(p.due) {
					keys[k] = true
				}
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			slices.Sort(sorted)
			for _, k := range sorted {
				if ctx.Err() != nil {
					return nil
				}
				sc.look(ctx, k, now, &r)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		sc.log(r.errs)
	}
}

// wait waits d (with the injected Sleep) or until inotify reports
// something, whichever comes first, and returns what inotify reported (up
// to maxBatch events); closed says the watcher's channels were closed.
func (sc *scanner) wait(ctx context.Context, fw *fsnotify.Watcher, d time.Duration) (evs []fsnotify.Event, errs []error, closed bool) {
	sctx, cancel := context.WithCancel(ctx)
	slept := make(chan struct{})
	go func() {
		defer close(slept)
		_ = sc.w.Sleep(sctx, d)
	}()
	take := func(ev fsnotify.Event, okEv bool, err error, okErr bool) {
		switch {
		case okEv:
			evs = append(evs, ev)
		case okErr:
			errs = append(errs, err)
		default:
			closed = true
		}
	}
	select {
	case ev, ok := <-fw.Events:
		take(ev, ok, nil, false)
	case err, ok := <-fw.Errors:
		take(fsnotify.Event{}, false, err, ok)
	case <-slept:
	}
	cancel()
	<-slept
	for !closed && len(evs) < maxBatch {
		select {
		case ev, ok := <-fw.Events:
			take(ev, ok, nil, false)
		case err, ok := <-fw.Errors:
			take(fsnotify.Event{}, false, err, ok)
		default:
			return evs, errs, closed
		}
	}
	return evs, errs, closed
}

// list considers every object under prefix (a directory that appeared).
func (sc *scanner) list(ctx context.Context, prefix string, now time.Time, r *scanResult) {
	objs, ignored, err := sc.s.listLocal(ctx, prefix)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("store %s: list %q: %w (will retry)", sc.s.url, prefix, err))
		return
	}
	for _, f := range ignored {
		sc.ignore(f)
	}
	for _, o := range objs {
		sc.consider(ctx, o, now, r, true)
	}
}

// forgetUnder forgets every key under prefix (a directory that went away).
func (sc *scanner) forgetUnder(prefix string) {
	for k := range sc.pending {
		if strings.HasPrefix(k, prefix) {
			delete(sc.pending, k)
		}
	}
	for k := range sc.known {
		if strings.HasPrefix(k, prefix) {
			delete(sc.known, k)
		}
	}
	for k := range sc.links {
		if strings.HasPrefix(k, prefix) {
			delete(sc.links, k)
		}
	}
}

// dirWatch keeps an inotify watch on every directory of a file:// store.
// inotify watches one directory at a time, so each new directory gets its
// own, and a directory moved away has its own and its subdirectories'
// removed (the kernel keeps them, under names that are no longer true).
type dirWatch struct {
	s       *Store
	fw      *fsnotify.Watcher
	watched map[string]bool // "/"-separated, relative to the store; "." is the store
}

// addTree watches dir and every directory under it. Symbolic links to
// directories are not followed, as in listings.
func (d *dirWatch) addTree(ctx context.Context, dir string) error {
	err := fs.WalkDir(d.s.root.FS(), dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) || isEscape(err) {
				return nil // removed meanwhile
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !e.IsDir() {
			return nil
		}
		if err := d.fw.Add(filepath.Join(d.s.dir, filepath.FromSlash(p))); err != nil {
			if isNotExist(err) {
				return fs.SkipDir
			}
			return fmt.Errorf("watch directory %s: %w (raise fs.inotify.max_user_watches if it is too low)", p, err)
		}
		d.watched[p] = true
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("store %s: %w", d.s.url, err)
	}
	return nil
}

// forget drops the watches of dir and the directories under it.
func (d *dirWatch) forget(dir string) {
	for p := range d.watched {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			_ = d.fw.Remove(filepath.Join(d.s.dir, filepath.FromSlash(p)))
			delete(d.watched, p)
		}
	}
}

// rel turns an event's path into a "/"-separated path inside the store.
func (d *dirWatch) rel(name string) (string, bool) {
	r, ok := strings.CutPrefix(name, d.s.dir+string(filepath.Separator))
	if !ok || r == "" {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// isDir reports whether rel is a directory (not a link to one) now.
func (d *dirWatch) isDir(rel string) bool {
	fi, err := d.s.root.Lstat(filepath.FromSlash(rel))
	return err == nil && fi.IsDir()
}

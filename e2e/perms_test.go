package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestTheDataDirIsTheOwnersAlone: under the usual umask (022) the data dir,
// the warehouse, the state, the embedded queue's files, the job logs and
// the landed objects must not be readable by other users of the machine.
func TestTheDataDirIsTheOwnersAlone(t *testing.T) {
	old := syscall.Umask(0o022) // what a login shell has; sluice inherits it
	t.Cleanup(func() { syscall.Umask(old) })
	dataDir := filepath.Join(t.TempDir(), "data")
	d := startRun(t, dataDir, strings.Replace(putSpec, "%s", "100ms", 1))
	src := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(src, []byte(`{"id": 1, "v": "a"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "put", "--data-dir="+dataDir, src, "in/one.json")
	waitDaemon(t, "the put object's row", d, func() bool {
		return sluice(t, nil, "sql", "--data-dir="+dataDir, "--format=csv", "--no-header", "select count(*) from items").stdout == "1\n"
	})
	d.stop()
	fi, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir %s has mode %v, want 0700", dataDir, fi.Mode().Perm())
	}
	var files, open []string
	filepath.WalkDir(dataDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, err := e.Info()
		if err != nil {
			return nil // gone since the listing
		}
		files = append(files, p)
		if info.Mode().Perm()&0o077 != 0 && info.Mode()&fs.ModeSymlink == 0 {
			open = append(open, info.Mode().Perm().String()+" "+strings.TrimPrefix(p, dataDir))
		}
		return nil
	})
	for _, want := range []string{"warehouse.db", "state.db", "lake/in/one.json"} {
		if _, err := os.Stat(filepath.Join(dataDir, want)); err != nil {
			t.Errorf("the test did not make %s: %v", want, err)
		}
	}
	if len(open) > 0 {
		t.Errorf("%d of %d entries of the data dir are open to group or others:\n%s", len(open), len(files), strings.Join(open, "\n"))
	}
}

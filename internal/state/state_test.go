package state

import "testing"

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	path := t.TempDir() + "/state.db"
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			db, err := Open(t.Context(), path)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

package cli

import (
	"context"
	"fmt"
	"mime"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/store"
)

func init() {
	register(command{name: "put", args: "LOCALFILE KEY",
		summary: "upload a file into the store (its event comes from the owning sluice process on a local store, from the server's bucket notifications on s3://)", run: runPut})
}

func runPut(ctx context.Context, a *app, args []string) error {
	fs := a.flags("put")
	storeURL := fs.String("store", "", "store URL (default $SLUICE_STORE, else the data dir's lake)")
	ct := fs.String("content-type", "", "content type (default: from the file extension)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want LOCALFILE and KEY")
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	defer f.Close()
	st, err := a.openStore(ctx, *storeURL, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if *ct == "" {
		*ct = mime.TypeByExtension(filepath.Ext(pos[0]))
	}
	o, err := st.Write(ctx, pos[1], f, *ct)
	if err != nil {
		return err
	}
	if !engine.RaisesEvents(o.Key) {
		fmt.Fprintf(a.stderr, "note: %s raises no event (keys under %s, or with a path segment starting with \".\" or \"_temporary\", are sluice's own), so no pipeline will see it\n", o.Key, engine.LogPrefix)
	}
	fmt.Fprintf(a.stdout, "put %s (%d bytes, ETag %s) into %s\n", o.Key, o.Size, o.ETag, st.URL())
	return nil
}

// openStore opens the store named by the flag, $SLUICE_STORE or the data
// dir, which is created when create is set and must exist otherwise.
func (a *app) openStore(ctx context.Context, flagURL string, create bool) (*store.Store, error) {
	u := a.envOr(flagURL, "SLUICE_STORE")
	if u == "" {
		dir, err := a.existingDir()
		if create {
			err = dir.Ensure()
		}
		if err != nil {
			return nil, err
		}
		u = dir.StoreURL()
	}
	return store.Open(ctx, u, nil)
}

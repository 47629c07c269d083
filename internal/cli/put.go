package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/store"
)

func init() {
	register(command{name: "put", args: "LOCALFILE KEY [-f PIPELINE.yaml]",
		summary: "upload a file into the store and publish its event at once (on s3:// with notifications, the server's bucket notifications do)", run: runPut})
}

// runPut writes the file and, when the store is the pipeline's, publishes
// its event itself, into the pipeline's queue (the embedded one is reached
// through the sluice process that owns the data dir), and marks the version
// seen so the owner's watcher does not announce it again. When it cannot —
// no spec is known, the store is another one, or no sluice runs with the
// embedded queue — the file is only written: the watcher of the owning
// sluice announces it once it has settled, or `sluice run` when it starts.
func runPut(ctx context.Context, a *app, args []string) error {
	fs := a.flags("put")
	storeURL := fs.String("store", "", "store URL (default $SLUICE_STORE, else the data dir's lake)")
	ct := fs.String("content-type", "", "content type (default: from the file extension)")
	file := fs.String("f", "", "pipeline spec whose queue gets the event (default: the spec the data dir last ran)")
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
	if *ct == "" {
		*ct = mime.TypeByExtension(filepath.Ext(pos[0]))
	}
	key := pos[1]
	target := a.envOr(*storeURL, "SLUICE_STORE")
	if target == "" {
		dir, err := a.dir()
		if err != nil {
			return err
		}
		target = dir.StoreURL()
	}
	e, why := a.publisher(ctx, target, *file)
	var o store.Object
	if e != nil {
		defer e.Close()
		if o, err = e.Store.Write(ctx, key, f, *ct); err != nil {
			return err
		}
		if err := e.Announce(ctx, o); err != nil {
			why = fmt.Sprintf("publishing it failed: %v", err)
		}
	} else {
		st, err := a.openStore(ctx, *storeURL, true)
		if err != nil {
			return err
		}
		defer st.Close()
		if o, err = st.Write(ctx, key, f, *ct); err != nil {
			return err
		}
		target = st.URL()
	}
	switch {
	case !engine.RaisesEvents(o.Key):
		fmt.Fprintf(a.stderr, "note: %s raises no event (keys under %s, or with a path segment starting with \".\" or \"_temporary\", are sluice's own), so no pipeline will see it\n", o.Key, engine.LogPrefix)
	case why != "" && strings.HasPrefix(target, "file:"):
		fmt.Fprintf(a.stderr, "note: no event published for %s (%s); the watcher of the sluice that owns the data dir announces it once it has settled, or `sluice run` when it starts\n", o.Key, why)
	}
	if e != nil {
		target = e.Store.URL()
	}
	fmt.Fprintf(a.stdout, "put %s (%d bytes, ETag %s) into %s\n", o.Key, o.Size, o.ETag, target)
	return nil
}

// publisher opens the pipeline for publishing a put's event: the spec
// (-f, or the one the data dir last ran) must use storeURL, the store put
// writes to. When it cannot, it says why.
func (a *app) publisher(ctx context.Context, storeURL, file string) (*engine.Engine, string) {
	dir, err := a.dir()
	if err != nil {
		return nil, err.Error()
	}
	if _, err := os.Stat(dir.Path); err != nil && file == "" {
		return nil, "no data dir, so no pipeline spec is known"
	}
	spec, err := a.specFor(ctx, dir, file)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return nil, "no pipeline spec is recorded for the data dir; pass -f PIPELINE.yaml"
		}
		return nil, err.Error()
	}
	s, q, _ := engine.URLs(spec, dir)
	if s != storeURL {
		return nil, fmt.Sprintf("the store is not pipeline %s's", spec.Name)
	}
	if _, owned := dir.Owned(); engine.IsEmbedded(q) && !owned {
		return nil, "no sluice is running on " + dir.Path
	}
	e, err := engine.Open(ctx, engine.Config{Spec: spec, DataDir: dir, Logger: a.logger(slog.LevelWarn), WriteOnly: true})
	if err != nil {
		return nil, err.Error()
	}
	return e, ""
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

package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
)

func init() {
	register(command{name: "ls", args: "[-l] [-a] [--ignored] [PREFIX]",
		summary: "list objects in the store", run: runLs})
}

func runLs(ctx context.Context, a *app, args []string) error {
	fs := a.flags("ls")
	storeURL := fs.String("store", "", "store URL (default $SLUICE_STORE, else the data dir's lake)")
	long := fs.Bool("l", false, "long listing: a header line, then size, modification time (UTC) and ETag before each key")
	showAll := fs.Bool("a", false, "also list sluice's own objects (job logs under "+engine.LogPrefix+")")
	ignored := fs.Bool("ignored", false, "list the files of a local store that cannot become objects, with the reason")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("at most one PREFIX")
	}
	prefix := ""
	if len(pos) == 1 {
		prefix = pos[0]
	}
	st, err := a.openStore(ctx, *storeURL, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if *ignored {
		files, err := st.Ignored(ctx, prefix)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintf(a.stdout, "%s\t%s\n", f.PrintablePath(), f.Reason)
		}
		return nil
	}
	all, err := st.List(ctx, prefix)
	if err != nil {
		return err
	}
	objs := all[:0:0]
	for _, o := range all {
		if *showAll || strings.HasPrefix(prefix, "_sluice") || !strings.HasPrefix(o.Key, "_sluice/") {
			objs = append(objs, o)
		}
	}
	if !*long {
		for _, o := range objs {
			fmt.Fprintln(a.stdout, o.Key)
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIZE\tMODIFIED\tETAG\tKEY")
	for _, o := range objs {
		etag := o.ETag
		if etag == "" {
			if s, err := st.Stat(ctx, o.Key); err == nil {
				etag = s.ETag
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", o.Size, o.ModTime.UTC().Format(time.RFC3339), etag, o.Key)
	}
	return tw.Flush()
}

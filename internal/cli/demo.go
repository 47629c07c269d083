package cli

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/pipeline"
)

func init() {
	register(command{name: "demo", args: "",
		summary: "run the reference pipelines end to end on embedded defaults, offline", run: runDemo})
}

// demoPosts are JSONPlaceholder's 100 /posts records (MIT licence, typicode).
//
//go:embed demodata/posts.json
var demoPosts []byte

// demoSpec is the blog-posts reference pipeline; the demo fills in its
// local API's URL. examples/posts/pipeline.yaml is the same pipeline
// against the public API.
const demoSpec = `name: demo
sources:
  posts:
    http:
      url: %s/posts
      timeout: 10s
    land: "raw/posts/dt={{.Date}}/posts_{{.Time}}_{{.Unique}}.json"
loads:
  posts:
    on: {prefix: raw/posts/, suffix: .json}
    format: json
    table: posts
    write: merge
    primary_key: [id]
    columns:
      id: bigint
      userId: {type: bigint, as: userid}
      title: text
      body: text
`

// serveDemoAPI serves demoPosts at /posts on a free loopback port.
func serveDemoAPI() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo: listen on loopback: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(demoPosts)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func runDemo(ctx context.Context, a *app, args []string) error {
	fs := a.flags("demo")
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	api, stop, err := serveDemoAPI()
	if err != nil {
		return err
	}
	defer stop()
	spec, err := pipeline.Parse("demo.yaml", []byte(fmt.Sprintf(demoSpec, api)), a.getenv)
	if err != nil {
		return fmt.Errorf("demo spec: %w", err)
	}
	dir, err := a.dir()
	if err != nil {
		return err
	}
	out := a.stdout
	fmt.Fprintf(out, "sluice demo — the blog-posts reference pipeline, on embedded defaults\n")
	fmt.Fprintf(out, "  data dir    %s\n", dir.Path)
	fmt.Fprintf(out, "  API         %s/posts (a local copy of JSONPlaceholder's 100 posts)\n", api)
	res, e, err := a.runEngine(ctx, spec, "demo", true, 1, a.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return err
	}
	st := &e.Stats
	_, _, whURL := engine.URLs(spec, dir)
	fmt.Fprintf(out, "\nimport → raw zone → queue → load\n")
	fmt.Fprintf(out, "  landed      %d raw object(s) under raw/posts/\n", st.Landed.Load())
	fmt.Fprintf(out, "  events      %d published, %d found in the lake\n", st.Events.Load(), st.Found.Load())
	fmt.Fprintf(out, "  loaded      %d object(s), %d row(s) into table posts (%s); %d duplicate delivery(ies) skipped\n",
		st.ObjectsLoaded.Load(), st.Rows.Load(), redact(whURL), st.Duplicates.Load())
	if n, err := a.count(ctx, whURL, "posts"); err == nil {
		fmt.Fprintf(out, "  posts now   %d row(s) (write mode merge on id: re-runs keep one row per post)\n", n)
	}
	fmt.Fprintf(out, "  took        %s\n", time.Since(start).Round(time.Millisecond))
	dd := ""
	if a.dataDir != "" {
		dd = " --data-dir " + a.dataDir
	}
	fmt.Fprintf(out, "\nLook around:\n  sluice%s ls raw/posts/\n  sluice%s sql \"select id, userid, title from posts order by id limit 5\"\n  sluice%s dlq ls\n", dd, dd, dd)
	return nil
}

func (a *app) count(ctx context.Context, whURL, table string) (int64, error) {
	e, err := openWarehouse(ctx, whURL)
	if err != nil {
		return 0, err
	}
	defer e.Close()
	_, rows, err := e.Query(ctx, "select count(*) from "+table)
	if err != nil || len(rows) != 1 {
		return 0, err
	}
	var n int64
	fmt.Sscan(cell(rows[0][0]), &n)
	return n, nil
}

func redact(u string) string {
	if i := strings.Index(u, "@"); i > 0 && strings.Contains(u[:i], ":") {
		if j := strings.Index(u, "://"); j > 0 {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

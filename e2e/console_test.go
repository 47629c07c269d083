package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/state"
)

// consolePipeline is the posts load (into PostgreSQL) and the hydropower
// job, with the console on; the test's API serves the 100 posts.
const consolePipeline = `name: console
sources:
  posts:
    http: {url: %s/posts}
    land: "raw/posts/posts_{{.Time}}.json"
loads:
  posts:
    on: {prefix: raw/posts/, suffix: .json}
    table: posts
    write: merge
    primary_key: [id]
    columns: {id: bigint, userId: {type: bigint, as: userid}, title: text, body: text}
jobs:
  hydropower:
    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv}
    settle: 200ms
    curate:
      input: "data/{{.Group}}/"
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
`

// screenshotDir is where the console test saves its screenshots:
// $SLUICE_SCREENSHOTS, else a directory it names in the log.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SLUICE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "sluice-console-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestTheConsoleInChromiumShowsTheRunAndTheLoadAndReplaysADeadLetter opens
// the console of a running pipeline in headless Chromium: the SUCCEEDED
// hydropower run with its inputs (key + ETag) and outputs, the posts load
// with 100 rows; a dead letter (a post the table's CHECK constraint
// refuses) whose replay button is refused without the admin token and, once
// logged in and the constraint dropped, loads the object: the warehouse
// holds its row (checked with SQL).
func TestTheConsoleInChromiumShowsTheRunAndTheLoadAndReplaysADeadLetter(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: ./scripts/test.sh installs it (apt install chromium)")
	}
	shots := screenshotDir(t)
	t.Logf("screenshots in %s", shots)

	whURL, schema, conn := pgSchema(t)
	ctx := context.Background()
	// The table exists before sluice starts, with a constraint that
	// refuses post 101: its object is dead-lettered until the constraint
	// goes.
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema+`; CREATE TABLE `+schema+`.posts (id bigint PRIMARY KEY, userid bigint, title text, body text, CONSTRAINT no_101 CHECK (id <> 101))`); err != nil {
		t.Fatal(err)
	}
	posts, err := os.ReadFile(filepath.Join("..", "internal", "cli", "demodata", "posts.json"))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(posts)
	}))
	defer api.Close()

	dataDir := t.TempDir()
	const token = "console-test-admin-token"
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	f := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(consolePipeline, api.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "run.log")
	logf, _ := os.Create(logPath)
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--data-dir="+dataDir, "-f", f, "--http", fmt.Sprintf("127.0.0.1:%d", port))
	env := append(cleanEnv(), "SLUICE_WAREHOUSE="+whURL, "SLUICE_ADMIN_TOKEN="+token)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, dataDir: dataDir, log: logPath}
	defer d.stop()

	waitDaemon(t, "the console to answer /healthz", d, func() bool {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	waitDaemon(t, "the 100 posts to load", d, func() bool {
		return pgInt(t, conn, "select count(*) from "+schema+".posts") == 100
	})
	csv, err := os.ReadFile(filepath.Join("..", "internal", "cli", "demodata", "hydropower-consumption.csv"))
	if err != nil {
		t.Fatal(err)
	}
	csvFile := filepath.Join(t.TempDir(), "h.csv")
	os.WriteFile(csvFile, csv, 0o644)
	extra := filepath.Join(t.TempDir(), "extra.json")
	os.WriteFile(extra, []byte(`[{"id": 101, "userId": 1, "title": "refused until the constraint goes", "body": "b"}]`), 0o644)
	putEnv := []string{"SLUICE_WAREHOUSE=" + whURL}
	mustRun(t, putEnv, "put", "--data-dir="+dataDir, csvFile, "data/2020-08-07_2PM/hydropower-consumption.csv")
	mustRun(t, putEnv, "put", "--data-dir="+dataDir, extra, "raw/posts/extra.json")
	waitDaemon(t, "a SUCCEEDED hydropower run", d, func() bool {
		rs := runs(t, dataDir)
		return len(rs) == 1 && rs[0].State == "SUCCEEDED" && !rs[0].Terminated.IsZero()
	})
	run := runs(t, dataDir)[0]
	var dlqID int64
	waitDaemon(t, "the dead letter of raw/posts/extra.json", d, func() bool {
		dlqID = deadLetterID(t, dataDir, "raw/posts/extra.json")
		return dlqID > 0
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, d.logTail())
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	// The first Run starts the browser: no timeout on it.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	// The overview: the posts load with its 100 rows, the job's run.
	do("overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#loads")), shot("console-overview.png"))
	if got := strings.TrimSpace(text(`#loads tr[data-load="posts"] td.rows`)); got != "100" {
		t.Errorf("the overview shows %q rows for load posts, want 100", got)
	}
	// The load's page.
	do("load page", chromedp.Navigate(base+"/loads/posts"), chromedp.WaitVisible(chromedp.CSS("#rows")), shot("console-load.png"))
	if got := text("#rows"); got != "100" {
		t.Errorf("load page: %q rows, want 100", got)
	}
	// The run, reached by clicking it in the runs list.
	do("run page", chromedp.Navigate(base+"/runs"), chromedp.Click(chromedp.CSS(`a[href="/runs/`+run.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#inputs")), shot("console-run.png"))
	if got := text("#state"); got != "SUCCEEDED" {
		t.Errorf("run page state %q, want SUCCEEDED", got)
	}
	in := text("#inputs")
	if !strings.Contains(in, "data/2020-08-07_2PM/hydropower-consumption.csv") || !strings.Contains(in, run.Inputs[0].ETag) {
		t.Errorf("run page inputs %q lack the CSV's key and ETag %s", in, run.Inputs[0].ETag)
	}
	out := text("#outputs")
	if !strings.Contains(out, "_SUCCESS") || !strings.Contains(out, ".snappy.parquet") {
		t.Errorf("run page outputs %q lack the Parquet part and _SUCCESS", out)
	}

	// Replay without the token: refused, and nothing loads.
	if _, err := conn.Exec(ctx, `ALTER TABLE `+schema+`.posts DROP CONSTRAINT no_101`); err != nil {
		t.Fatal(err)
	}
	replayBtn := chromedp.CSS(fmt.Sprintf(`tr[data-id="%d"] button.replay`, dlqID))
	do("replay without the token", chromedp.Navigate(base+"/dlq"), chromedp.WaitVisible(replayBtn), shot("console-dead-letters.png"),
		chromedp.Click(replayBtn), chromedp.WaitVisible(chromedp.CSS("#error")), shot("console-replay-refused.png"))
	if got := text("#error"); !strings.Contains(got, "forbidden") {
		t.Errorf("replay without the token shows %q, want forbidden", got)
	}
	if h1 := text("h1"); !strings.Contains(h1, "403") {
		t.Errorf("replay without the token answered %q, want 403", h1)
	}
	if n := pgInt(t, conn, "select count(*) from "+schema+".posts where id = 101"); n != 0 {
		t.Fatalf("post 101 loaded after a refused replay")
	}

	// Log in, replay: the row arrives.
	do("log in and replay", chromedp.Navigate(base+"/login"), chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#loads")),
		chromedp.Navigate(base+"/dlq"), chromedp.Click(replayBtn), chromedp.WaitVisible(chromedp.CSS("#replayed")),
		shot("console-replayed.png"))
	waitDaemon(t, "post 101 to load after the replay", d, func() bool {
		return pgInt(t, conn, "select count(*) from "+schema+".posts where id = 101") == 1
	})
	if n := pgInt(t, conn, "select count(*) from "+schema+"._sluice_ledger where object_key = 'raw/posts/extra.json'"); n != 1 {
		t.Errorf("raw/posts/extra.json has %d ledger rows, want 1", n)
	}
	waitDaemon(t, "the dead letter to go once its work succeeded", d, func() bool {
		return deadLetterID(t, dataDir, "raw/posts/extra.json") == 0
	})
	do("overview after the replay", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#loads")), shot("console.png"))
	if got := strings.TrimSpace(text(`#loads tr[data-load="posts"] td.rows`)); got != "101" {
		t.Errorf("the overview shows %q rows after the replay, want 101", got)
	}
}

// deadLetterID is the id of key's dead letter in the data dir's state (0:
// none).
func deadLetterID(t *testing.T, dataDir, key string) int64 {
	t.Helper()
	st, err := state.OpenReadOnly(context.Background(), "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dls, err := st.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dls {
		if d.Key == key {
			return d.ID
		}
	}
	return 0
}

// TestServeShowsADataDirWithoutRunningItAndKeepsToLoopbackWithoutAToken
// serves the console over a demo's data dir: the tables and runs show,
// actions are refused (no token), and an address beyond loopback without a
// token is refused at start.
func TestServeShowsADataDirWithoutRunningItAndKeepsToLoopbackWithoutAToken(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "d")
	mustRun(t, nil, "demo", "--data-dir="+dataDir)
	r := sluice(t, nil, "serve", "--data-dir="+dataDir, "--http", "0.0.0.0:0")
	if r.code == 0 || !strings.Contains(r.stderr, "SLUICE_ADMIN_TOKEN") {
		t.Errorf("serve on 0.0.0.0 without a token: exit %d, %q; want a refusal naming SLUICE_ADMIN_TOKEN", r.code, r.stderr)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var out lockedBuffer
	cmd := exec.Command(bin, "serve", "--data-dir="+dataDir, "--http", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, dataDir: dataDir, log: filepath.Join(t.TempDir(), "log")}
	defer d.stop()
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	waitDaemon(t, "serve to answer", nil, func() bool { code, _ := get("/healthz"); return code == 200 })
	if code, body := get("/loads/posts"); code != 200 || !strings.Contains(body, `id="rows">100<`) {
		t.Errorf("/loads/posts = %d, want 100 rows:\n%s", code, body)
	}
	if _, body := get("/runs"); !strings.Contains(body, "SUCCEEDED") || !strings.Contains(body, "hydropower") {
		t.Errorf("/runs lacks the SUCCEEDED hydropower run")
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "warehouse: ok") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	res, err := http.Post(base+"/dlq/1/replay", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("an action on a console without a token = %d, want 403", res.StatusCode)
	}
}

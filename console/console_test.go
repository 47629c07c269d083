package console

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/state"
)

func newState(t *testing.T) state.Store {
	t.Helper()
	st, err := state.Open(t.Context(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestActionsNeedTheTokenAndReadOnlyConsolesRefuseThem(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	id, err := st.AddDeadLetter(ctx, deadletter.DeadLetter{Target: "load-posts", Kind: deadletter.Load, Name: "posts", Key: "raw/a.json", ETag: "e1",
		Reason: "object raw/a.json: table posts refused record 1", Attempts: 1, FirstFailure: time.Now(), LastFailure: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var replayed []int64
	replay := func(_ context.Context, id int64) error { replayed = append(replayed, id); return nil }
	path := "/dlq/" + itoa(id) + "/replay"

	ro := httptest.NewServer(New(Config{State: st, Replay: replay}))
	defer ro.Close()
	if code, body := post(t, ro.Client(), ro.URL+path, nil, http.Header{"Authorization": {"Bearer anything"}}); code != 403 || !strings.Contains(body, "read-only") {
		t.Errorf("replay on a read-only console = %d %q, want 403 saying it is read-only", code, body)
	}

	const token = "s3cret-token"
	srv := httptest.NewServer(New(Config{State: st, Replay: replay, AdminToken: token}))
	defer srv.Close()
	if code, body := post(t, srv.Client(), srv.URL+path, nil, nil); code != 403 || !strings.Contains(body, "admin token") {
		t.Errorf("replay without the token = %d %q, want 403", code, body)
	}
	if code, _ := post(t, srv.Client(), srv.URL+path, nil, http.Header{"Authorization": {"Bearer wrong"}}); code != 403 {
		t.Errorf("replay with a wrong token = %d, want 403", code)
	}
	if len(replayed) != 0 {
		t.Fatalf("refused requests replayed %v", replayed)
	}
	if code, _ := post(t, srv.Client(), srv.URL+path, nil, http.Header{"Authorization": {"Bearer " + token}}); code != 200 {
		t.Errorf("replay with the bearer token = %d, want 200 after the redirect", code)
	}
	if len(replayed) != 1 || replayed[0] != id {
		t.Fatalf("replayed %v, want [%d]", replayed, id)
	}

	// The login form: a wrong token sets nothing; the right one a session
	// cookie that holds no token; a cross-site post is refused even then.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if _, body := post(t, browser, srv.URL+"/login", url.Values{"token": {"nope"}}, nil); !strings.Contains(body, "not the admin token") {
		t.Errorf("a wrong login did not say so: %q", body)
	}
	post(t, browser, srv.URL+"/login", url.Values{"token": {token}}, nil)
	u, _ := url.Parse(srv.URL)
	cookies := jar.Cookies(u)
	if len(cookies) != 1 || strings.Contains(cookies[0].Value, token) {
		t.Fatalf("session cookies %v: want one, without the token", cookies)
	}
	if code, _ := post(t, browser, srv.URL+path, nil, http.Header{"Origin": {"http://evil.example"}}); code != 403 {
		t.Errorf("cross-site replay = %d, want 403", code)
	}
	if code, body := post(t, browser, srv.URL+path, nil, http.Header{"Origin": {srv.URL}}); code != 200 || !strings.Contains(body, "replayed") {
		t.Errorf("replay after login = %d, want 200 with a confirmation", code)
	}
	if len(replayed) != 2 {
		t.Errorf("replayed %v, want two replays", replayed)
	}
	if _, body := get(t, browser, srv.URL+"/dlq"); !strings.Contains(body, "table posts refused record 1") {
		t.Errorf("the dead letter page lacks the reason")
	}
}

func TestHealthzNeverChecksDependenciesAndReadyzNamesWhatFailed(t *testing.T) {
	st := newState(t)
	srv := httptest.NewServer(New(Config{State: st, Ready: map[string]func(context.Context) error{
		"store":     func(context.Context) error { return nil },
		"warehouse": func(context.Context) error { return errors.New("connection refused") },
	}}))
	defer srv.Close()
	if code, body := get(t, srv.Client(), srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, srv.Client(), srv.URL+"/readyz")
	if code != 503 || !strings.Contains(body, "warehouse: connection refused") || !strings.Contains(body, "store: ok") {
		t.Errorf("/readyz = %d %q, want 503 naming the warehouse", code, body)
	}
}

func TestRunPageShowsInputsOutputsAndTheLifecycle(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	run := job.Run{ID: "r1", Rule: "hydro", Group: "2020-08-07_2PM", State: job.Starting, Created: t0,
		Inputs: []job.Input{{Key: "data/2020-08-07_2PM/h.csv", ETag: "abc"}}}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.State, run.Started = job.Running, t0.Add(time.Second)
	if err := st.UpdateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.State, run.Ended, run.Terminated, run.ComputeSeconds = job.Succeeded, t0.Add(3*time.Second), t0.Add(3*time.Second), 3
	run.Outputs = []string{"curated/2020-08-07_2PM/part-00000-x-c000.snappy.parquet", "curated/2020-08-07_2PM/_SUCCESS"}
	if err := st.UpdateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{State: st}))
	defer srv.Close()
	code, body := get(t, srv.Client(), srv.URL+"/runs/r1")
	for _, want := range []string{"SUCCEEDED", "data/2020-08-07_2PM/h.csv", "abc", "part-00000-x-c000.snappy.parquet", "_SUCCESS", "RUNNING", "2026-12-02 10:00:03.000Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("run page (%d) lacks %q", code, want)
		}
	}
	if code, _ := get(t, srv.Client(), srv.URL+"/runs/nope"); code != 404 {
		t.Errorf("unknown run = %d, want 404", code)
	}
	_, body = get(t, srv.Client(), srv.URL+"/lineage?key="+url.QueryEscape("data/2020-08-07_2PM/h.csv"))
	if !strings.Contains(body, "/runs/r1") {
		t.Errorf("lineage of the input does not lead to its run")
	}
	_, body = get(t, srv.Client(), srv.URL+"/cost")
	if !strings.Contains(body, "<td>hydro</td>") || !strings.Contains(body, "3.0") {
		t.Errorf("cost page lacks the run's 3.0 compute seconds")
	}
}

func TestListenRefusesTheNetworkWithoutAToken(t *testing.T) {
	if _, err := Listen("0.0.0.0:0", "", "", ""); err == nil || !strings.Contains(err.Error(), TokenEnv) {
		t.Errorf("Listen on all interfaces without a token: %v, want a refusal naming %s", err, TokenEnv)
	}
	l, err := Listen("127.0.0.1:0", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, err = Listen("0.0.0.0:0", "tok", "", "")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Listen("127.0.0.1:0", "", "/nonexistent.crt", ""); err == nil {
		t.Error("a certificate without a key was accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestALoopbackConsoleRefusesOtherHostNamesAndAnExposedOneNeedsTheTokenToRead(t *testing.T) {
	st := newState(t)
	srv := httptest.NewServer(New(Config{State: st}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/runs", nil)
	req.Host = "attacker.example:8080" // a rebound DNS name
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("a request for Host attacker.example = %d, want 421", res.StatusCode)
	}
	req.Host = "localhost:9464"
	if res, err = srv.Client().Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("a request for Host localhost = %v, %v; want 200", res.StatusCode, err)
	}
	res.Body.Close()

	const token = "exposed-token"
	exp := httptest.NewServer(New(Config{State: st, AdminToken: token, Exposed: true}))
	defer exp.Client().CloseIdleConnections()
	defer exp.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/runs": http.StatusSeeOther, "/dlq": http.StatusSeeOther, "/healthz": 200, "/readyz": 200, "/login": 200} {
		res, err := noRedirect.Get(exp.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("exposed console, no token: %s = %d, want %d", path, res.StatusCode, want)
		}
	}
	req, _ = http.NewRequest("GET", exp.URL+"/runs", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err = noRedirect.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("exposed console with the token: /runs = %v, %v", res.StatusCode, err)
	}
	res.Body.Close()
}

func TestASessionEndsAtItsExpiryAndCannotBeForged(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	c := New(Config{State: newState(t), AdminToken: "tok", Clock: func() time.Time { return now }})
	v := c.session(now.Add(sessionTTL))
	if !c.sessionValid(v) {
		t.Fatal("a fresh session is not valid")
	}
	if strings.Contains(v, "tok") {
		t.Errorf("the session %q holds the token", v)
	}
	exp, mac, _ := strings.Cut(v, ".")
	if c.sessionValid(exp + "9." + mac) {
		t.Error("a session whose expiry was moved is valid")
	}
	other := New(Config{State: newState(t), AdminToken: "another", Clock: func() time.Time { return now }})
	if other.sessionValid(v) {
		t.Error("a session made under another token is valid")
	}
	now = now.Add(sessionTTL + time.Second)
	if c.sessionValid(v) {
		t.Error("an expired session is valid")
	}
}

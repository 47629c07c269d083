// Package statetest is the conformance suite every state backend passes:
// RunConformanceTests exercises a state.Store through the URL that opens
// it, including several stores opened separately (separate connections)
// and separate processes racing for the same leases.
//
// A backend's test package calls RunConformanceTests from a test and Main
// from its TestMain (Main runs the claimant side when the suite re-executes
// the test binary).
package statetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state"
)

// Environment of a claimant process (see Main).
const (
	envClaimant = "SLUICE_STATETEST_CLAIMANT" // the state URL
	envLease    = "SLUICE_STATETEST_LEASE"
)

// Main runs the tests, or, in a process the suite started as a claimant,
// tries once to acquire a lease and prints "won EPOCH" or "held".
func Main(m *testing.M) {
	if url := os.Getenv(envClaimant); url != "" {
		os.Exit(claimant(url, os.Getenv(envLease)))
	}
	os.Exit(m.Run())
}

func claimant(url, name string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := state.Open(ctx, url, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	l, err := st.Acquire(ctx, name, lease.NewHolder(), time.Minute)
	switch {
	case errors.Is(err, lease.ErrHeld):
		fmt.Println("held")
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 2
	default:
		fmt.Printf("won %d\n", l.Epoch)
	}
	return 0
}

// NewURL returns the URL of a fresh, empty state for one test (and
// arranges its removal).
type NewURL func(t *testing.T) string

// RunConformanceTests runs the suite against states newURL makes.
func RunConformanceTests(t *testing.T, newURL NewURL) {
	open := func(t *testing.T, url string) state.Store {
		t.Helper()
		st, err := state.Open(t.Context(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	fresh := func(t *testing.T) state.Store { return open(t, newURL(t)) }
	t.Run("RunsRoundTripAndFollowTheLifecycle", func(t *testing.T) { testRunLifecycle(t, fresh(t)) })
	t.Run("ListRunsFiltersAndPutsTheNewestFirst", func(t *testing.T) { testListRuns(t, fresh(t)) })
	t.Run("ClearRequestKeepsARequestRefreshedAfterItWasRead", func(t *testing.T) { testClearRequest(t, fresh(t)) })
	t.Run("RetriesAreKeptAndReset", func(t *testing.T) { testRetries(t, fresh(t)) })
	t.Run("DeadLetters", func(t *testing.T) { testDeadLetters(t, fresh(t)) })
	t.Run("SeenAndSettings", func(t *testing.T) { testSeenAndSettings(t, fresh(t)) })
	t.Run("LeaseAcquireRenewRelease", func(t *testing.T) { testLeaseBasics(t, fresh(t)) })
	t.Run("LeaseExpires", func(t *testing.T) { testLeaseExpiry(t, fresh(t)) })
	t.Run("FencedWritesAreRefusedAfterLoss", func(t *testing.T) { testFencing(t, fresh(t)) })
	t.Run("ConcurrentStoresClaimOnce", func(t *testing.T) {
		url := newURL(t)
		var stores []state.Store
		for range 5 {
			stores = append(stores, open(t, url))
		}
		testConcurrentClaims(t, stores)
	})
	t.Run("ConcurrentProcessesClaimOnce", func(t *testing.T) { testProcessClaims(t, newURL(t)) })
	t.Run("ReopenKeepsEverything", func(t *testing.T) {
		url := newURL(t)
		a := open(t, url)
		if err := a.SetSetting(t.Context(), "pipeline", "p"); err != nil {
			t.Fatal(err)
		}
		l, err := a.Acquire(t.Context(), "x", "h", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		b := open(t, url)
		if v, err := b.Setting(t.Context(), "pipeline"); v != "p" || err != nil {
			t.Errorf("setting after reopen = %q, %v", v, err)
		}
		if err := b.Check(t.Context(), l); err != nil {
			t.Errorf("lease after reopen: %v", err)
		}
		ro, err := state.OpenReadOnly(t.Context(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if v, err := ro.Setting(t.Context(), "pipeline"); v != "p" || err != nil {
			t.Errorf("read-only setting = %q, %v", v, err)
		}
		if err := ro.SetSetting(t.Context(), "pipeline", "q"); err == nil {
			t.Error("a read-only state accepted a write")
		}
	})
}

var t0 = time.Date(2020, 8, 7, 14, 0, 0, 123456789, time.UTC)

func testRunLifecycle(t *testing.T, db state.Store) {
	ctx := t.Context()
	r := job.Run{ID: "r1", Rule: "hydro", Group: "d", State: job.Starting, Created: t0,
		Inputs: []job.Input{{Key: "data/d/a.csv", ETag: "e1"}, {Key: "data/d/b csv", ETag: `"x"`}}}
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRun(ctx, r); err == nil {
		t.Fatal("CreateRun accepted a duplicate id")
	}
	r.State, r.Started, r.PID = job.Running, t0.Add(time.Second), 77
	if err := db.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.State, r.Ended, r.Terminated, r.ExitCode, r.Outputs, r.ComputeSeconds, r.LogKey, r.Remote, r.Instances = job.Succeeded, t0.Add(2*time.Second), t0.Add(3*time.Second), 0, []string{"curated/d/_SUCCESS"}, 1.25, "logs/r1", "emr:j-1ABC", 3
	if err := db.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != job.Succeeded || !got.Created.Equal(t0) || !got.Started.Equal(r.Started) || !got.Terminated.Equal(r.Terminated) ||
		!slices.Equal(got.Inputs, r.Inputs) || !slices.Equal(got.Outputs, r.Outputs) || got.PID != 77 || got.ComputeSeconds != 1.25 || got.LogKey != "logs/r1" || got.Remote != "emr:j-1ABC" || got.Instances != 3 {
		t.Fatalf("GetRun = %+v, want %+v", got, r)
	}
	r.State = job.Running
	if err := db.UpdateRun(ctx, r); !errors.Is(err, job.ErrBadTransition) {
		t.Fatalf("SUCCEEDED → RUNNING: err = %v, want ErrBadTransition", err)
	}
	if _, err := db.GetRun(ctx, "nope"); !errors.Is(err, job.ErrRunNotFound) {
		t.Fatalf("GetRun(nope) err = %v", err)
	}
	if err := db.UpdateRun(ctx, job.Run{ID: "nope", State: job.Failed}); !errors.Is(err, job.ErrRunNotFound) {
		t.Fatalf("UpdateRun(nope) err = %v", err)
	}
}

func ids(t *testing.T, rs []job.Run, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testListRuns(t *testing.T, db state.Store) {
	ctx := t.Context()
	for i, r := range []job.Run{
		{ID: "a", Rule: "x", Group: "g1", State: job.Succeeded},
		{ID: "b", Rule: "x", Group: "g2", State: job.Failed},
		{ID: "c", Rule: "y", Group: "g1", State: job.Running},
		{ID: "d", Rule: "x", Group: "g1", State: job.Failed},
	} {
		r.Created = t0.Add(time.Duration(i) * time.Millisecond)
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    job.RunFilter
		want []string
	}{
		{job.RunFilter{}, []string{"d", "c", "b", "a"}},
		{job.RunFilter{Rule: "x"}, []string{"d", "b", "a"}},
		{job.RunFilter{Rule: "x", Group: "g1"}, []string{"d", "a"}},
		{job.RunFilter{Rule: "x", Group: "g1", States: []job.State{job.Succeeded, job.Running}}, []string{"a"}},
		{job.RunFilter{Limit: 2}, []string{"d", "c"}},
		{job.RunFilter{States: []job.State{job.Running, job.Failed}}, []string{"d", "c", "b"}},
	} {
		rs, err := db.ListRuns(ctx, tc.f)
		if got := ids(t, rs, err); !slices.Equal(got, tc.want) {
			t.Errorf("ListRuns(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	counts, err := db.CountRuns(ctx, "x")
	if err != nil || len(counts) != 2 || counts[job.Succeeded] != 1 || counts[job.Failed] != 2 {
		t.Errorf("CountRuns(x) = %v, %v; want SUCCEEDED 1, FAILED 2", counts, err)
	}
	if all, err := db.CountRuns(ctx, ""); err != nil || all[job.Running] != 1 || all[job.Failed] != 2 {
		t.Errorf("CountRuns(\"\") = %v, %v; want RUNNING 1, FAILED 2, SUCCEEDED 1", all, err)
	}
}

func testClearRequest(t *testing.T, db state.Store) {
	ctx := t.Context()
	for _, at := range []time.Time{t0, t0.Add(time.Second), t0.Add(-time.Hour)} { // the last: a late, older event
		if err := db.RequestRun(ctx, "x", "g", at); err != nil {
			t.Fatal(err)
		}
	}
	reqs, err := db.PendingRequests(ctx)
	if err != nil || len(reqs) != 1 || !reqs[0].FirstAt.Equal(t0) || !reqs[0].LastAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("PendingRequests = %+v, %v; want one from t0 to t0+1s", reqs, err)
	}
	read := reqs[0].LastAt
	if err := db.RequestRun(ctx, "x", "g", read.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.ClearRequest(ctx, "x", "g", read); err != nil || ok {
		t.Fatalf("ClearRequest of a refreshed request = %v, %v; want kept", ok, err)
	}
	if ok, err := db.ClearRequest(ctx, "x", "g", read.Add(time.Nanosecond)); err != nil || !ok {
		t.Fatalf("ClearRequest = %v, %v; want cleared", ok, err)
	}
	if reqs, _ := db.PendingRequests(ctx); len(reqs) != 0 {
		t.Fatalf("requests left: %v", reqs)
	}
}

func testRetries(t *testing.T, db state.Store) {
	ctx := t.Context()
	if err := db.RetryRequest(ctx, "x", "g", t0, t0.Add(time.Minute), t0, 2); err != nil {
		t.Fatal(err)
	}
	reqs, err := db.PendingRequests(ctx)
	if err != nil || len(reqs) != 1 || reqs[0].Attempts != 2 || !reqs[0].NotBefore.Equal(t0.Add(time.Minute)) || !reqs[0].FirstFailure.Equal(t0) {
		t.Fatalf("after RetryRequest: %+v, %v", reqs, err)
	}
	if err := db.ResetRetry(ctx, "x", "g"); err != nil {
		t.Fatal(err)
	}
	reqs, err = db.PendingRequests(ctx)
	if err != nil || len(reqs) != 1 || reqs[0].Attempts != 0 || !reqs[0].NotBefore.IsZero() || !reqs[0].FirstFailure.IsZero() {
		t.Fatalf("after ResetRetry: %+v, %v", reqs, err)
	}
}

func testDeadLetters(t *testing.T, db state.Store) {
	ctx := t.Context()
	d := deadletter.DeadLetter{Target: "load-posts", Kind: deadletter.Load, Name: "posts", Key: "a.json", ETag: "e1",
		Event: []byte(`{"x":1}`), Reason: "bad row", Attempts: 1, LastFailure: t0}
	id, err := db.AddDeadLetter(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	d.Reason, d.Attempts, d.LastFailure, d.Event = "still bad", 2, t0.Add(time.Minute), nil
	if id2, err := db.AddDeadLetter(ctx, d); err != nil || id2 != id {
		t.Fatalf("second AddDeadLetter = %d, %v; want the same id %d", id2, err, id)
	}
	id3, err := db.AddDeadLetter(ctx, deadletter.DeadLetter{Target: "job-j", Kind: deadletter.Job, Name: "j", Key: "g", LastFailure: t0, Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := db.DeadLetterFor(ctx, "load-posts", "a.json", "e1")
	if err != nil || !ok || got.Attempts != 3 || got.Reason != "still bad" || string(got.Event) != `{"x":1}` ||
		!got.FirstFailure.Equal(t0) || !got.LastFailure.Equal(t0.Add(time.Minute)) {
		t.Fatalf("DeadLetterFor = %+v, %v, %v", got, ok, err)
	}
	if err := db.MarkReplayed(ctx, id, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	all, err := db.DeadLetters(ctx)
	if err != nil || len(all) != 2 || all[0].ID != id || all[1].ID != id3 || !all[0].Replayed.Equal(t0.Add(time.Hour)) {
		t.Fatalf("DeadLetters = %+v, %v", all, err)
	}
	if recent, total, err := db.RecentDeadLetters(ctx, 1); err != nil || total != 2 || len(recent) != 1 || recent[0].ID != id3 || recent[0].Event != nil {
		t.Fatalf("RecentDeadLetters(1) = %+v, %d, %v; want the newest (%d) without its event, of 2", recent, total, err, id3)
	}
	if _, err := db.DeadLetters(ctx, id, id3+100); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("DeadLetters(unknown) err = %v", err)
	}
	if ok, err := db.ResolveDeadLetter(ctx, "load-posts", "a.json", "e1"); !ok || err != nil {
		t.Fatalf("ResolveDeadLetter = %v, %v", ok, err)
	}
	if _, ok, _ := db.DeadLetterFor(ctx, "load-posts", "a.json", "e1"); ok {
		t.Fatal("resolved dead letter still there")
	}
}

func testSeenAndSettings(t *testing.T, db state.Store) {
	ctx := t.Context()
	if _, _, ok, err := db.Seen(ctx, "a.csv"); ok || err != nil {
		t.Fatalf("Seen(unmarked) = %v, %v; want not seen", ok, err)
	}
	for _, v := range [][2]string{{"1:2:3:4:5", "e1"}, {"1:2:3:4:6", "e2"}} {
		if err := db.MarkSeen(ctx, "a.csv", v[0], v[1]); err != nil {
			t.Fatal(err)
		}
		fp, etag, ok, err := db.Seen(ctx, "a.csv")
		if !ok || err != nil || fp != v[0] || etag != v[1] {
			t.Errorf("Seen = %q %q %v %v; want %q %q", fp, etag, ok, err, v[0], v[1])
		}
	}
	if v, err := db.Setting(ctx, "k"); v != "" || err != nil {
		t.Errorf("unset setting = %q, %v", v, err)
	}
	for _, v := range []string{"one", "two"} {
		if err := db.SetSetting(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Setting(ctx, "k"); got != v || err != nil {
			t.Errorf("Setting = %q, %v; want %q", got, err, v)
		}
	}
}

func testLeaseBasics(t *testing.T, db state.Store) {
	ctx := t.Context()
	if _, ok, err := db.Get(ctx, "L"); ok || err != nil {
		t.Fatalf("Get(never acquired) = %v, %v", ok, err)
	}
	a, err := db.Acquire(ctx, "L", "A", time.Minute)
	if err != nil || a.Epoch < 1 || a.Holder != "A" || a.Name != "L" || a.Expires.IsZero() {
		t.Fatalf("Acquire = %+v, %v", a, err)
	}
	if _, err := db.Acquire(ctx, "L", "B", time.Minute); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire by B while A holds = %v, want ErrHeld", err)
	}
	a2, err := db.Acquire(ctx, "L", "A", time.Minute)
	if err != nil || a2.Epoch != a.Epoch {
		t.Fatalf("re-Acquire by the holder = %+v, %v; want the same epoch %d", a2, err, a.Epoch)
	}
	r, err := db.Renew(ctx, a, 2*time.Minute)
	if err != nil || r.Epoch != a.Epoch || !r.Expires.After(a.Expires) {
		t.Fatalf("Renew = %+v, %v (was %+v)", r, err, a)
	}
	if g, ok, err := db.Get(ctx, "L"); !ok || err != nil || g.Holder != "A" || g.Epoch != a.Epoch || !g.Expires.Equal(r.Expires) {
		t.Fatalf("Get = %+v, %v, %v; want %+v", g, ok, err, r)
	}
	if err := db.Check(ctx, a); err != nil {
		t.Fatalf("Check = %v", err)
	}
	if err := db.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(ctx, a); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Check after Release = %v, want ErrLost", err)
	}
	if _, err := db.Renew(ctx, a, time.Minute); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after Release = %v, want ErrLost", err)
	}
	b, err := db.Acquire(ctx, "L", "B", time.Minute)
	if err != nil || b.Epoch <= a.Epoch {
		t.Fatalf("Acquire by B after release = %+v, %v; want an epoch above %d", b, err, a.Epoch)
	}
	// Break: only at the epoch it names.
	if ok, err := db.Break(ctx, a); ok || err != nil {
		t.Fatalf("Break(stale epoch) = %v, %v; want false", ok, err)
	}
	if ok, err := db.Break(ctx, b); !ok || err != nil {
		t.Fatalf("Break = %v, %v", ok, err)
	}
	if err := db.Check(ctx, b); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Check after Break = %v, want ErrLost", err)
	}
	// Every change of hands, and every re-acquire after expiry, raises the
	// epoch; it never goes back.
	last := b.Epoch
	for i, h := range []string{"B", "B", "A", "C", "A"} {
		l, err := db.Acquire(ctx, "L", h, time.Minute)
		if err != nil || l.Epoch <= last {
			t.Fatalf("step %d: Acquire(%s) = %+v, %v; want epoch above %d", i, h, l, err, last)
		}
		last = l.Epoch
		if err := db.Release(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []time.Duration{0, -time.Second} {
		if _, err := db.Acquire(ctx, "M", "A", bad); err == nil {
			t.Errorf("Acquire with TTL %s succeeded", bad)
		}
	}
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLeaseExpiry(t *testing.T, db state.Store) {
	ctx := t.Context()
	ttl := 300 * time.Millisecond
	a, err := db.Acquire(ctx, "L", "A", ttl)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lease A expires", 10*time.Second, func() bool { return errors.Is(db.Check(ctx, a), lease.ErrLost) })
	if _, err := db.Renew(ctx, a, ttl); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew of an expired lease = %v, want ErrLost", err)
	}
	again, err := db.Acquire(ctx, "L", "A", time.Minute)
	if err != nil || again.Epoch <= a.Epoch {
		t.Fatalf("re-Acquire after expiry = %+v, %v; want an epoch above %d", again, err, a.Epoch)
	}
	if ok, err := db.CompareAndSwap(ctx, a, "k", "", "v"); !errors.Is(err, lease.ErrLost) || ok {
		t.Fatalf("CompareAndSwap under the expired epoch = %v, %v; want ErrLost", ok, err)
	}
	b, err := db.Acquire(ctx, "M", "B", ttl)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lease B expires", 10*time.Second, func() bool {
		_, err := db.Acquire(ctx, "M", "C", time.Minute)
		return err == nil
	})
	if g, _, _ := db.Get(ctx, "M"); g.Holder != "C" || g.Epoch <= b.Epoch {
		t.Fatalf("after C took the expired lease: %+v", g)
	}
}

func testFencing(t *testing.T, db state.Store) {
	ctx := t.Context()
	name := job.LeaseName("hydro", "d")
	l, err := db.Acquire(ctx, name, "A", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r := job.Run{ID: "r1", Rule: "hydro", Group: "d", State: job.Starting, Created: t0, Claimer: l.Holder, Epoch: l.Epoch}
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.State, r.PID = job.Running, 5
	if err := db.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.CompareAndSwap(ctx, l, "tick", "", "1"); !ok || err != nil {
		t.Fatalf("CompareAndSwap(absent → 1) = %v, %v", ok, err)
	}
	if ok, err := db.CompareAndSwap(ctx, l, "tick", "0", "2"); ok || err != nil {
		t.Fatalf("CompareAndSwap(wrong old) = %v, %v; want false", ok, err)
	}
	if ok, err := db.CompareAndSwap(ctx, l, "tick", "1", "2"); !ok || err != nil {
		t.Fatalf("CompareAndSwap(1 → 2) = %v, %v", ok, err)
	}
	if ok, err := db.Break(ctx, l); !ok || err != nil {
		t.Fatalf("Break = %v, %v", ok, err)
	}
	late := r
	late.State, late.Error = job.Succeeded, "late"
	if err := db.UpdateRun(ctx, late); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("UpdateRun after the claim was broken = %v, want ErrLost", err)
	}
	if got, err := db.GetRun(ctx, "r1"); err != nil || got.State != job.Running || got.Error != "" {
		t.Fatalf("run after a refused write = %+v, %v; want it unchanged", got, err)
	}
	if err := db.CreateRun(ctx, job.Run{ID: "r2", Rule: "hydro", Group: "d", State: job.Starting, Created: t0, Claimer: l.Holder, Epoch: l.Epoch}); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("CreateRun under a broken claim = %v, want ErrLost", err)
	}
	if _, err := db.GetRun(ctx, "r2"); !errors.Is(err, job.ErrRunNotFound) {
		t.Fatalf("refused CreateRun left a run: %v", err)
	}
	if ok, err := db.CompareAndSwap(ctx, l, "tick", "2", "3"); ok || !errors.Is(err, lease.ErrLost) {
		t.Fatalf("CompareAndSwap after loss = %v, %v; want ErrLost", ok, err)
	}
	if v, ok, err := db.Value(ctx, "tick"); v != "2" || !ok || err != nil {
		t.Fatalf("Value = %q, %v, %v; want 2", v, ok, err)
	}
	// A new claim (another holder, higher epoch) may write the run.
	m, err := db.Acquire(ctx, name, "B", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Claimer, r.Epoch, r.Error = job.Failed, m.Holder, m.Epoch, "worker lost"
	if err := db.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetRun(ctx, "r1"); got.Claimer != "B" || got.Epoch != m.Epoch || got.State != job.Failed {
		t.Fatalf("run after the new claimer wrote = %+v", got)
	}
	// An unfenced run (epoch 0) is written without a claim.
	if err := db.CreateRun(ctx, job.Run{ID: "r3", Rule: "x", Group: "g", State: job.Starting, Created: t0}); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentClaims(t *testing.T, stores []state.Store) {
	ctx := t.Context()
	for round := range 20 {
		name := job.LeaseName("race", fmt.Sprint(round))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []lease.Lease
		start := make(chan struct{})
		for i, st := range stores {
			wg.Go(func() {
				<-start
				l, err := st.Acquire(ctx, name, fmt.Sprintf("h%d", i), time.Minute)
				if err != nil && !errors.Is(err, lease.ErrHeld) {
					t.Error(err)
					return
				}
				if err == nil {
					// The winner's fenced write must land; everyone else's
					// must be refused.
					if ok, err := st.CompareAndSwap(ctx, l, name, "", l.Holder); !ok || err != nil {
						t.Errorf("winner's CompareAndSwap = %v, %v", ok, err)
					}
					mu.Lock()
					won = append(won, l)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("round %d: %d stores won the lease: %+v", round, len(won), won)
		}
		if v, _, _ := stores[0].Value(ctx, name); v != won[0].Holder {
			t.Fatalf("round %d: fenced value %q, want the winner %q", round, v, won[0].Holder)
		}
	}
}

func testProcessClaims(t *testing.T, url string) {
	for round := range 3 {
		name := fmt.Sprintf("proc/%d", round)
		var cmds []*exec.Cmd
		var outs []*strings.Builder
		for range 4 {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envClaimant+"="+url, envLease+"="+name)
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, out)
		}
		won := 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("claimant %d: %v: %s", i, err, outs[i])
			}
			switch o := strings.TrimSpace(outs[i].String()); {
			case strings.HasPrefix(o, "won "):
				won++
			case o == "held":
			default:
				t.Fatalf("claimant %d said %q", i, o)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d processes won the lease", round, won)
		}
	}
}

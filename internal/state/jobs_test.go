package state

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), t.TempDir()+"/state.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var t0 = time.Date(2020, 8, 7, 14, 0, 0, 123456789, time.UTC)

func TestJobRunsRoundTripAndFollowTheLifecycle(t *testing.T) {
	db, ctx := openTest(t), t.Context()
	r := JobRun{ID: "r1", Rule: "hydro", Group: "d", State: RunStarting, Created: t0,
		Inputs: []RunInput{{"data/d/a.csv", "e1"}, {"data/d/b csv", `"x"`}}}
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRun(ctx, r); err == nil {
		t.Fatal("CreateRun accepted a duplicate id")
	}
	r.State, r.Started, r.PID = RunRunning, t0.Add(time.Second), 77
	if err := db.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.State, r.Ended, r.Terminated, r.ExitCode, r.Outputs, r.ComputeSeconds, r.LogKey = RunSucceeded, t0.Add(2*time.Second), t0.Add(3*time.Second), 0, []string{"curated/d/_SUCCESS"}, 1.25, "logs/r1"
	if err := db.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != RunSucceeded || !got.Created.Equal(t0) || !got.Started.Equal(r.Started) || !got.Terminated.Equal(r.Terminated) ||
		!slices.Equal(got.Inputs, r.Inputs) || !slices.Equal(got.Outputs, r.Outputs) || got.PID != 77 || got.ComputeSeconds != 1.25 || got.LogKey != "logs/r1" {
		t.Fatalf("GetRun = %+v, want %+v", got, r)
	}
	r.State = RunRunning
	if err := db.UpdateRun(ctx, r); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("SUCCEEDED → RUNNING: err = %v, want ErrBadTransition", err)
	}
	if _, err := db.GetRun(ctx, "nope"); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("GetRun(nope) err = %v", err)
	}
	if err := db.UpdateRun(ctx, JobRun{ID: "nope", State: RunFailed}); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("UpdateRun(nope) err = %v", err)
	}
}

func TestListRunsFiltersAndPutsTheNewestFirst(t *testing.T) {
	db, ctx := openTest(t), t.Context()
	for i, r := range []JobRun{
		{ID: "a", Rule: "x", Group: "g1", State: RunSucceeded},
		{ID: "b", Rule: "x", Group: "g2", State: RunFailed},
		{ID: "c", Rule: "y", Group: "g1", State: RunRunning},
		{ID: "d", Rule: "x", Group: "g1", State: RunFailed},
	} {
		r.Created = t0.Add(time.Duration(i) * time.Millisecond)
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []JobRun, err error) []string {
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
	for _, tc := range []struct {
		f    RunFilter
		want []string
	}{
		{RunFilter{}, []string{"d", "c", "b", "a"}},
		{RunFilter{Rule: "x"}, []string{"d", "b", "a"}},
		{RunFilter{Rule: "x", Group: "g1"}, []string{"d", "a"}},
		{RunFilter{Rule: "x", Group: "g1", States: []RunState{RunSucceeded, RunRunning}}, []string{"a"}},
		{RunFilter{Limit: 2}, []string{"d", "c"}},
	} {
		if got := ids(db.ListRuns(ctx, tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("ListRuns(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	if got := ids(db.ListRuns(ctx, RunFilter{States: []RunState{RunRunning, RunFailed}})); !slices.Equal(got, []string{"d", "c", "b"}) {
		t.Errorf("ListRuns by state = %v", got)
	}
}

func TestClearRequestKeepsARequestRefreshedAfterItWasRead(t *testing.T) {
	db, ctx := openTest(t), t.Context()
	if err := db.RequestRun(ctx, "x", "g", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.RequestRun(ctx, "x", "g", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.RequestRun(ctx, "x", "g", t0.Add(-time.Hour)); err != nil { // late, older event
		t.Fatal(err)
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

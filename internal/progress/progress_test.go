package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// clock is a fake time source moved by the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} }
func lines(b *bytes.Buffer) []string {
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}
func options(c *clock) *Options { return &Options{Clock: c.now} }
func TestABufferIsNotATerminal(t *testing.T) { // nor is a regular file
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}

func TestElsewhereALineEveryTenPercentAndTheLast(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, "replay", options(c))
	for i := 1; i <= 1000; i++ {
		c.advance(10 * time.Millisecond) // 100 items a second, 10 s in all
		r.Update(i, 1000)
	}
	got := lines(&out)
	want := []string{
		"replay: 100/1000 (10%), 100/s, 9s left",
		"replay: 200/1000 (20%), 100/s, 8s left",
		"replay: 300/1000 (30%), 100/s, 7s left",
		"replay: 400/1000 (40%), 100/s, 6s left",
		"replay: 500/1000 (50%), 100/s, 5s left",
		"replay: 600/1000 (60%), 100/s, 4s left",
		"replay: 700/1000 (70%), 100/s, 3s left",
		"replay: 800/1000 (80%), 100/s, 2s left",
		"replay: 900/1000 (90%), 100/s, 1s left",
		"replay: 1000/1000 (100%), 100/s, took 10s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestElsewhereSlowWorkGetsALineEveryFiveSeconds(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, "dlq replay", options(c))
	for i := 1; i <= 50; i++ {
		c.advance(time.Second) // one item a second: 2% each
		r.Update(i, 50)
	}
	got := lines(&out)
	if len(got) != 10 {
		t.Fatalf("%d lines, want 10 (10%% = 5 items = 5 s; the last is the tenth):\n%s", len(got), out.String())
	}
	if got[0] != "dlq replay: 5/50 (10%), 1.00/s, 45s left" || got[9] != "dlq replay: 50/50 (100%), 1.00/s, took 50s" {
		t.Fatalf("lines:\n%s", out.String())
	}

	// Work of 10,000 items at 10 a second: 5 s pass long before 10%.
	out.Reset()
	c = newClock()
	r = New(&out, "replay", options(c))
	for i := 1; i <= 120; i++ {
		c.advance(100 * time.Millisecond)
		r.Update(i, 10000)
	}
	if got := lines(&out); len(got) != 2 || got[0] != "replay: 50/10000 (0%), 10.0/s, 16m35s left" || got[1] != "replay: 100/10000 (1%), 10.0/s, 16m30s left" {
		t.Fatalf("lines:\n%s", out.String())
	}
}

func TestElsewhereARepeatedUpdateWritesNothingMore(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, "replay", options(c))
	c.advance(time.Second)
	r.Update(3, 3)
	r.Update(3, 3)
	r.End()
	if got := out.String(); got != "replay: 3/3 (100%), 3.00/s, took 1s\n" {
		t.Fatalf("got %q", got)
	}
}

func TestOnATerminalOneLineRedrawnAtMostTenTimesASecond(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, "replay", options(c))
	r.tty = true
	for i := 1; i <= 100; i++ {
		c.advance(20 * time.Millisecond) // 50 updates a second
		r.Update(i, 100)
	}
	s := out.String()
	if n := strings.Count(s, "\r"); n != 21 { // every 5th of 100 updates over 2 s, and the last
		t.Errorf("%d redraws, want 21:\n%q", n, s)
	}
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\rreplay: [####################] 100/100 (100%), 50.0/s, took 2s\x1b[K\n") {
		t.Errorf("want one line ended once, at the end:\n%q", s)
	}
	if !strings.HasPrefix(s, "\rreplay: [....................] 1/100 (1%), 50.0/s, 2s left\x1b[K\r") {
		t.Errorf("first draw:\n%q", s)
	}
}

func TestOnATerminalEndEndsALineTheWorkLeftOpen(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, "replay", options(c))
	r.tty = true
	c.advance(time.Second)
	r.Update(5, 10)
	r.End()
	r.End()
	if got := out.String(); got != "\rreplay: [##########..........] 5/10 (50%), 5.00/s, 1s left\x1b[K\n" {
		t.Fatalf("got %q", got)
	}
}

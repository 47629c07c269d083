package pgwh_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluicehq/sluice/warehouse/driver"
	"github.com/sluicehq/sluice/warehouse/pgwh"
)

func TestLoadOfTextWithANULCharacterIsErrInvalidDataNamingTheColumn(t *testing.T) {
	w := open(t)
	ctx := t.Context()
	tbl := driver.Table{Name: "posts", Columns: []driver.Column{{Name: "id", Type: driver.BigInt}, {Name: "title", Type: driver.Text}, {Name: "doc", Type: driver.JSON}}}
	if err := w.EnsureTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		row  []any
		want []string
	}{
		// The backend is called directly: warehouse.Load would refuse these first.
		{"NUL in text", []any{int64(2), "a\x00b", nil}, []string{"SQLSTATE 22021", "column title"}},
		{"NUL escape in JSON", []any{int64(2), "b", `{"a":"\u0000"}`}, []string{"SQLSTATE 22P05", "column doc"}},
	} {
		_, err := w.Load(ctx, driver.Batch{Table: tbl, Mode: driver.Append, Key: "k", ETag: "e", Rows: mustRows(tbl, [][]any{{int64(1), "ok", nil}, tc.row})})
		if !errors.Is(err, driver.ErrInvalidData) {
			t.Fatalf("%s: Load error = %v, want ErrInvalidData", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, s)
			}
		}
	}
	if _, rows, err := w.Query(ctx, "SELECT count(*) FROM posts"); err != nil || rows[0][0] != int64(0) {
		t.Fatalf("rows after failed loads: %v, %v; want 0", rows, err)
	}
	if l, err := w.Ledger(ctx, ""); err != nil || len(l) != 0 {
		t.Fatalf("ledger after failed loads: %v, %v; want none", l, err)
	}
}

func TestLoadWhenTheServerGoesAwayIsNotErrInvalidData(t *testing.T) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	w, err := pgwh.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, startHint)
	}
	defer w.Close()
	tbl := driver.Table{Name: "t", Columns: []driver.Column{{Name: "a", Type: driver.BigInt}}}
	if err := w.EnsureTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	batch := func(etag string) driver.Batch {
		return driver.Batch{Table: tbl, Mode: driver.Append, Key: "k", ETag: etag, Rows: mustRows(tbl, [][]any{{int64(1)}})}
	}
	if _, err := w.Load(ctx, batch("1")); err != nil {
		t.Fatalf("Load through the proxy: %v", err)
	}
	p.stop() // open connections break; new ones are refused
	var last error
	for i := range 3 { // the first may meet a broken pooled connection
		_, err := w.Load(ctx, batch(string(rune('2'+i))))
		if err == nil {
			t.Fatalf("Load %d after the server went away succeeded", i+2)
		}
		if errors.Is(err, driver.ErrInvalidData) {
			t.Fatalf("Load %d after the server went away: error %q claims the data is bad", i+2, err)
		}
		t.Logf("Load %d: %v", i+2, err)
		last = err
	}
	if !strings.Contains(last.Error(), "refused") || !strings.Contains(last.Error(), "is PostgreSQL running") {
		t.Errorf("error %q does not say the connection was refused and what to check", last)
	}
}

// proxy forwards TCP connections to a PostgreSQL server until stopped.
type proxy struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(p.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestOnlyDataExceptionsAndConstraintViolationsAreErrInvalidData(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"22021", true},  // invalid byte sequence (NUL in text)
		{"22P02", true},  // invalid text representation
		{"22003", true},  // numeric value out of range
		{"23502", true},  // not-null violation
		{"23505", true},  // unique violation
		{"23514", true},  // check violation
		{"40001", false}, // serialization failure
		{"40P01", false}, // deadlock
		{"57014", false}, // query cancelled
		{"57P01", false}, // admin shutdown
		{"08006", false}, // connection failure
		{"53300", false}, // too many connections
		{"42P01", false}, // undefined table
		{"", false},
	}
	for _, tc := range tests {
		if got := pgwh.IsDataError(pgError(tc.code)); got != tc.want {
			t.Errorf("SQLSTATE %q: IsDataError = %v, want %v", tc.code, got, tc.want)
		}
	}
	if pgwh.IsDataError(errors.New("dial tcp 127.0.0.1:1: connect: connection refused")) {
		t.Error("a non-PostgreSQL error is ErrInvalidData")
	}
}

// pgError is a server error with SQLSTATE code, wrapped as Load wraps it.
func pgError(code string) error {
	return fmt.Errorf("copy rows into s.t: %w", &pgconn.PgError{Severity: "ERROR", Code: code, Message: "test"})
}

// Package storetest is the conformance suite for store.Store: every backend
// (file://, mem://, and S3-compatible servers) must pass it, which is what
// lets tests use mem:// as a faithful stand-in for the others.
package storetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Run runs the suite. open returns a new, empty store; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	t.Helper()
	mk := func(t *testing.T) *store.Store {
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"PutThenReadAllReturnsTheBytesAndTheSameVersion", testPutReadAll},
		{"ETagIsTheHexMD5OfTheContent", testETagIsMD5},
		{"StatDescribesTheObject", testStat},
		{"OpenReturnsTheVersionItReads", testOpen},
		{"PutReplacesAnExistingObject", testReplace},
		{"EmptyObjectsAreObjects", testEmpty},
		{"ContentTypeRoundTrips", testContentType},
		{"MissingKeysAreErrNotFound", testNotFound},
		{"DeleteRemovesTheObject", testDelete},
		{"ListIsRecursiveSortedAndFilteredByPrefix", testList},
		{"WalkVisitsWhatListReturnsWithStatsETag", testWalk},
		{"InvalidKeysAreRejected", testInvalidKeys},
		{"WriteStreamsLargeObjects", testWriteLarge},
		{"ReadersNeverSeePartialObjects", testAtomicInterleaved},
		{"ConcurrentReadersNeverSeePartialObjects", testAtomicConcurrent},
		{"FailedWriteLeavesThePreviousVersion", testFailedWrite},
		{"CancelledWriteLeavesNothing", testCancelledWrite},
		{"ReplacingWithOtherBytesOfTheSameSizeIsANewVersion", testSameSizeReplace},
		{"EveryValidKeyIsAnOrdinaryObject", testOrdinaryKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mk(t)) })
	}
}

// MD5Hex is the ETag file:// and mem:// stores give data.
func MD5Hex(data []byte) string {
	s := md5.Sum(data)
	return hex.EncodeToString(s[:])
}

func put(t *testing.T, s *store.Store, key, data string) store.Object {
	t.Helper()
	o, err := s.Put(context.Background(), key, []byte(data), "")
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return o
}

func testPutReadAll(t *testing.T, s *store.Store) {
	ctx := context.Background()
	data := []byte("id,name\n1,alpha\n")
	w, err := s.Put(ctx, "raw/posts.csv", data, "text/csv")
	if err != nil {
		t.Fatal(err)
	}
	if w.Key != "raw/posts.csv" || w.Size != int64(len(data)) || w.ETag == "" || w.ModTime.IsZero() {
		t.Errorf("Put returned %+v; want key, size %d, an ETag and a ModTime", w, len(data))
	}
	got, r, err := s.ReadAll(ctx, "raw/posts.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("ReadAll = %q, want %q", got, data)
	}
	if r.ETag != w.ETag || r.Size != w.Size || !r.ModTime.Equal(w.ModTime) {
		t.Errorf("ReadAll version %+v differs from Put's %+v", r, w)
	}
}

func testETagIsMD5(t *testing.T, s *store.Store) {
	o := put(t, s, "a.json", `{"id":1}`)
	if want := MD5Hex([]byte(`{"id":1}`)); o.ETag != want {
		t.Errorf("ETag = %q, want the hex MD5 %q", o.ETag, want)
	}
	if strings.Contains(o.ETag, `"`) {
		t.Errorf("ETag %q is quoted", o.ETag)
	}
	o2 := put(t, s, "copy/of/a.json", `{"id":1}`)
	if o2.ETag != o.ETag {
		t.Errorf("equal bytes under two keys have ETags %q and %q", o.ETag, o2.ETag)
	}
}

func testStat(t *testing.T, s *store.Store) {
	w := put(t, s, "d/x.txt", "hello")
	o, err := s.Stat(context.Background(), "d/x.txt")
	if err != nil {
		t.Fatal(err)
	}
	if o.Key != "d/x.txt" || o.Size != 5 || o.ETag != MD5Hex([]byte("hello")) || !o.ModTime.Equal(w.ModTime) || o.ContentType == "" {
		t.Errorf("Stat = %+v; want key d/x.txt, size 5, MD5 ETag, ModTime %v, a content type", o, w.ModTime)
	}
	if d := time.Since(o.ModTime); d < -time.Minute || d > time.Hour {
		t.Errorf("ModTime %v is not about now", o.ModTime)
	}
}

func testOpen(t *testing.T, s *store.Store) {
	w := put(t, s, "o.bin", "0123456789")
	r, o, err := s.Open(context.Background(), "o.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "0123456789" || o.ETag != w.ETag || o.Size != 10 {
		t.Errorf("Open read %q with %+v; want the bytes put and version %+v", got, o, w)
	}
}

func testReplace(t *testing.T, s *store.Store) {
	ctx := context.Background()
	v1 := put(t, s, "k", "version one")
	v2 := put(t, s, "k", "version two!")
	if v1.ETag == v2.ETag {
		t.Fatalf("different content kept ETag %q", v1.ETag)
	}
	got, o, err := s.ReadAll(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "version two!" || o.ETag != v2.ETag || o.Size != 12 {
		t.Errorf("after replace read %q %+v; want version two", got, o)
	}
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Errorf("List after replace = %+v; want one object", objs)
	}
}

func testEmpty(t *testing.T, s *store.Store) {
	o := put(t, s, "_SUCCESS", "")
	if o.Size != 0 || o.ETag != MD5Hex(nil) {
		t.Errorf("empty object = %+v; want size 0 and ETag %s", o, MD5Hex(nil))
	}
	got, _, err := s.ReadAll(context.Background(), "_SUCCESS")
	if err != nil || len(got) != 0 {
		t.Errorf("ReadAll(empty) = %q, %v", got, err)
	}
}

func testContentType(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, tc := range []struct{ key, in, want string }{
		{"t/a.csv", "text/csv", "text/csv"},
		{"t/b", "application/x-ndjson", "application/x-ndjson"},
		{"t/c.parquet", "application/vnd.apache.parquet", "application/vnd.apache.parquet"},
	} {
		w, err := s.Put(ctx, tc.key, []byte("x,y\n"), tc.in)
		if err != nil {
			t.Fatal(err)
		}
		o, err := s.Stat(ctx, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if w.ContentType != tc.want || o.ContentType != tc.want {
			t.Errorf("%s: Put returned %q, Stat %q; want %q", tc.key, w.ContentType, o.ContentType, tc.want)
		}
	}
	o, err := s.Put(ctx, "t/detected", []byte("plain words"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.ContentType, "text/plain") {
		t.Errorf("empty content type for text was stored as %q; want it detected as text/plain", o.ContentType)
	}
}

func testNotFound(t *testing.T, s *store.Store) {
	ctx := context.Background()
	put(t, s, "dir/present", "x")
	for _, key := range []string{"absent", "dir/absent", "dir", "dir/present/below"} {
		_, err := s.Stat(ctx, key)
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s(%q) error = %v; want ErrNotFound", op, key, err)
			} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) || !strings.Contains(err.Error(), s.URL()) {
				t.Errorf("%s(%q) error %q does not name the key and the store", op, key, err)
			}
		}
		check("Stat", err)
		_, _, err = s.ReadAll(ctx, key)
		check("ReadAll", err)
		r, _, err := s.Open(ctx, key)
		if r != nil {
			r.Close()
		}
		check("Open", err)
		check("Delete", s.Delete(ctx, key))
	}
}

func testDelete(t *testing.T, s *store.Store) {
	ctx := context.Background()
	put(t, s, "a/b/c", "1")
	put(t, s, "a/b/d", "2")
	if err := s.Delete(ctx, "a/b/c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a/b/c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat after Delete: %v; want ErrNotFound", err)
	}
	objs, err := s.List(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "a/b/d" {
		t.Errorf("List after Delete = %+v; want only a/b/d", objs)
	}
}

func keysOf(objs []store.Object) []string {
	ks := make([]string, len(objs))
	for i, o := range objs {
		ks[i] = o.Key
	}
	return ks
}

func testList(t *testing.T, s *store.Store) {
	ctx := context.Background()
	data := map[string]string{
		"data/2020-08-07_2PM/b.csv":   "bb",
		"data/2020-08-07_2PM/a.csv":   "a",
		"data/2020-08-08_2PM/x/y.csv": "yyy",
		"data-other.csv":              "o",
		"data/2020-08-07_2PM-b.csv":   "sorts before the directory's files",
		"z":                           "z",
	}
	for k, v := range data {
		put(t, s, k, v)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"data-other.csv", "data/2020-08-07_2PM-b.csv", "data/2020-08-07_2PM/a.csv", "data/2020-08-07_2PM/b.csv", "data/2020-08-08_2PM/x/y.csv", "z"}},
		{"data/", []string{"data/2020-08-07_2PM-b.csv", "data/2020-08-07_2PM/a.csv", "data/2020-08-07_2PM/b.csv", "data/2020-08-08_2PM/x/y.csv"}},
		{"data/2020-08-07_2PM/", []string{"data/2020-08-07_2PM/a.csv", "data/2020-08-07_2PM/b.csv"}},
		{"data/2020-08-0", []string{"data/2020-08-07_2PM-b.csv", "data/2020-08-07_2PM/a.csv", "data/2020-08-07_2PM/b.csv", "data/2020-08-08_2PM/x/y.csv"}},
		{"data", []string{"data-other.csv", "data/2020-08-07_2PM-b.csv", "data/2020-08-07_2PM/a.csv", "data/2020-08-07_2PM/b.csv", "data/2020-08-08_2PM/x/y.csv"}},
		{"data/2020-08-08_2PM/x/y.csv", []string{"data/2020-08-08_2PM/x/y.csv"}},
		{"nothing/here/", nil},
		{"curated/", nil},
	} {
		objs, err := s.List(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", tc.prefix, err)
		}
		if got := keysOf(objs); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("List(%q) = %q; want %q", tc.prefix, got, tc.want)
		}
		for _, o := range objs {
			if o.Size != int64(len(data[o.Key])) || o.ModTime.IsZero() || o.ETag != "" {
				t.Errorf("List(%q) gave %+v; want size %d, a ModTime and no ETag", tc.prefix, o, len(data[o.Key]))
			}
		}
	}
	for _, bad := range []string{"/data", "../", "data//", "a\\b"} {
		if _, err := s.List(ctx, bad); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("List(%q) error = %v; want ErrInvalidKey", bad, err)
		}
	}
}

func testWalk(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for k, v := range map[string]string{"w/a/1.json": "1", "w/a/2.json": "22", "w/b.json": "333", "w-other": "o", "x": "x"} {
		put(t, s, k, v)
	}
	for _, prefix := range []string{"", "w/", "w", "w/a/", "none/"} {
		want, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got []store.Object
		if err := s.Walk(ctx, prefix, func(o store.Object) error { got = append(got, o); return nil }); err != nil {
			t.Fatalf("Walk(%q): %v", prefix, err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
		if fmt.Sprint(keysOf(got)) != fmt.Sprint(keysOf(want)) {
			t.Fatalf("Walk(%q) visited %q; List returns %q", prefix, keysOf(got), keysOf(want))
		}
		for i, o := range got {
			if o.Size != want[i].Size || !o.ModTime.Equal(want[i].ModTime) {
				t.Errorf("Walk(%q) gave %+v; List %+v", prefix, o, want[i])
			}
			if o.ETag == "" {
				continue // the walk may leave it to Stat
			}
			st, err := s.Stat(ctx, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if st.ETag != o.ETag {
				t.Errorf("Walk(%q) gave %s ETag %q; Stat says %q", prefix, o.Key, o.ETag, st.ETag)
			}
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Walk(ctx, "", func(store.Object) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Walk with a callback that fails: %v after %d objects; want the callback's error after 1", err, n)
	}
	if err := s.Walk(ctx, "/w", func(store.Object) error { return nil }); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("Walk(\"/w\") error = %v; want ErrInvalidKey", err)
	}
}

// longKey is MaxKeyLen bytes in segments short enough for any file system.
var longKey = strings.Repeat(strings.Repeat("k", 99)+"/", 10) + strings.Repeat("k", store.MaxKeyLen-1000)

func testInvalidKeys(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, key := range []string{"", "/abs", "a/../b", "..", "../x", "a/./b", "a//b", "dir/", "win\\path", "nul\x00", "tab\tkey", string([]byte{0xff, 0xfe}), longKey + "k"} {
		_, err := s.Put(ctx, key, []byte("x"), "")
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v; want ErrInvalidKey", key, err)
			continue
		}
		if !strings.Contains(err.Error(), s.URL()) {
			t.Errorf("Put(%q) error %q does not name the store", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q) error = %v; want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v; want ErrInvalidKey", key, err)
		}
	}
	objs, err := s.List(ctx, "")
	if err != nil || len(objs) != 0 {
		t.Errorf("after rejected writes List = %+v, %v; want nothing", objs, err)
	}
	// Characters that are fine in keys.
	for _, key := range []string{"a b/c+d.csv", "ünï/cödé", "x=1/y@2", "..a/b..", "a/.hidden", longKey} {
		o, err := s.Put(ctx, key, []byte("ok"), "")
		if err != nil {
			t.Errorf("Put(%q): %v", key, err)
			continue
		}
		if got, _, err := s.ReadAll(ctx, key); err != nil || string(got) != "ok" || o.Key != key {
			t.Errorf("ReadAll(%q) = %q, %v", key, got, err)
		}
	}
}

// pattern returns n deterministic bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func testWriteLarge(t *testing.T, s *store.Store) {
	data := pattern(3<<20+17, 1)
	o, err := s.Write(context.Background(), "big/blob.bin", bytes.NewReader(data), "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if o.Size != int64(len(data)) || o.ETag != MD5Hex(data) {
		t.Errorf("Write = %+v; want size %d ETag %s", o, len(data), MD5Hex(data))
	}
	got, _, err := s.ReadAll(context.Background(), "big/blob.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadAll after Write: %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
}

// checkWhole asserts that key is absent or holds exactly one of versions, and
// that List shows nothing but allowed keys.
func checkWhole(t *testing.T, s *store.Store, key string, allowed map[string]bool, versions ...[]byte) {
	t.Helper()
	ctx := context.Background()
	got, o, err := s.ReadAll(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case errors.Is(err, store.ErrRewritten):
		// Replaced on every attempt while a writer kept rewriting it: an
		// honest "try again", never a partial read.
	case err != nil:
		t.Errorf("ReadAll during write: %v", err)
	default:
		ok := false
		for _, v := range versions {
			if bytes.Equal(got, v) && o.ETag == MD5Hex(v) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("a reader saw %d bytes with ETag %s: a partial or unknown object", len(got), o.ETag)
		}
	}
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Errorf("List during write: %v", err)
	}
	for _, o := range objs {
		if !allowed[o.Key] {
			t.Errorf("List during a write shows %q", o.Key)
		}
		if o.Key == key {
			ok := false
			for _, v := range versions {
				ok = ok || o.Size == int64(len(v))
			}
			if !ok {
				t.Errorf("List shows %q with size %d: a partial object", key, o.Size)
			}
		}
	}
}

// testAtomicInterleaved feeds a Write chunk by chunk and checks readers
// between chunks: deterministic, no timing involved.
func testAtomicInterleaved(t *testing.T, s *store.Store) {
	ctx := context.Background()
	old := []byte("the previous version")
	put(t, s, "atomic/obj", string(old))
	put(t, s, "atomic/other", "x")
	allowed := map[string]bool{"atomic/obj": true, "atomic/other": true, "atomic/new": true}
	for _, key := range []string{"atomic/obj", "atomic/new"} {
		data := pattern(1<<20, 9)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(ctx, key, pr, "")
			done <- err
		}()
		const chunk = 64 << 10
		for off := 0; off < len(data); off += chunk {
			if _, err := pw.Write(data[off : off+chunk]); err != nil {
				t.Fatal(err)
			}
			if key == "atomic/obj" {
				checkWhole(t, s, key, allowed, old)
			} else {
				checkWhole(t, s, key, allowed)
			}
		}
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		checkWhole(t, s, key, allowed, data)
		if _, err := s.Stat(ctx, key); err != nil {
			t.Errorf("after the write: %v", err)
		}
	}
}

// testAtomicConcurrent writes versions while readers poll, to catch races
// the race detector or the file system can expose.
func testAtomicConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	versions := [][]byte{pattern(512<<10, 1), pattern(700<<10, 2), pattern(300<<10, 3)}
	allowed := map[string]bool{"c/obj": true}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				checkWhole(t, s, "c/obj", allowed, versions...)
			}
		}()
	}
	for i := range 12 {
		if _, err := s.Write(ctx, "c/obj", bytes.NewReader(versions[i%len(versions)]), ""); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testFailedWrite(t *testing.T, s *store.Store) {
	ctx := context.Background()
	put(t, s, "f/obj", "good")
	boom := errors.New("upstream connection reset")
	_, err := s.Write(ctx, "f/obj", &failingReader{pattern(200<<10, 4), boom}, "")
	if !errors.Is(err, boom) {
		t.Errorf("Write with a failing reader: %v; want the reader's error", err)
	}
	checkWhole(t, s, "f/obj", map[string]bool{"f/obj": true}, []byte("good"))
	_, err = s.Write(ctx, "f/new", &failingReader{pattern(10, 4), boom}, "")
	if err == nil {
		t.Fatal("Write with a failing reader succeeded")
	}
	if _, err := s.Stat(ctx, "f/new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed first write left an object: Stat error %v", err)
	}
}

func testCancelledWrite(t *testing.T, s *store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(ctx, "cancel/obj", pr, "")
		done <- err
	}()
	if _, err := pw.Write(pattern(100<<10, 5)); err != nil {
		t.Fatal(err)
	}
	cancel()
	pw.CloseWithError(context.Canceled)
	if err := <-done; err == nil {
		t.Fatal("cancelled Write succeeded")
	}
	objs, err := s.List(context.Background(), "")
	if err != nil || len(objs) != 0 {
		t.Errorf("after a cancelled write List = %+v, %v; want nothing", objs, err)
	}
}

func testSameSizeReplace(t *testing.T, s *store.Store) {
	ctx := context.Background()
	v1 := put(t, s, "same/size.csv", "id\n1\n2\n")
	v2 := put(t, s, "same/size.csv", "id\n3\n4\n")
	o, err := s.Stat(ctx, "same/size.csv")
	if err != nil {
		t.Fatal(err)
	}
	if v1.ETag == v2.ETag || o.ETag != v2.ETag || o.ETag != MD5Hex([]byte("id\n3\n4\n")) {
		t.Errorf("ETags %q then %q, Stat %q; want a new ETag, the MD5 of the new bytes", v1.ETag, v2.ETag, o.ETag)
	}
}

// testOrdinaryKeys: names a backend might want for itself (metadata
// sidecars, temporary files) are objects like any other on every backend.
func testOrdinaryKeys(t *testing.T, s *store.Store) {
	ctx := context.Background()
	keys := []string{"k/a.csv", "k/a.csv.attrs", "k/export.0123456789abcdef.tmp", "k/x.attrs"}
	for _, k := range keys {
		put(t, s, k, "data of "+k)
	}
	objs, err := s.List(ctx, "k/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
	}
	if fmt.Sprint(got) != fmt.Sprint(keys) {
		t.Errorf("List = %q; want %q", got, keys)
	}
	for _, k := range keys {
		b, _, err := s.ReadAll(ctx, k)
		if err != nil || string(b) != "data of "+k {
			t.Errorf("ReadAll(%q) = %q, %v", k, b, err)
		}
	}
}

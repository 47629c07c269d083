package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

func openT(t *testing.T, rawURL string, opts *store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), rawURL, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	return s
}

func fileURL(dir string) string { return "file://" + filepath.ToSlash(dir) }

func TestFileStoreConforms(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store { return openT(t, fileURL(t.TempDir()), nil) })
}

func TestMemStoreConforms(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store { return openT(t, "mem://", nil) })
}

func TestEqualBytesAreTheSameVersionOnFileAndMem(t *testing.T) {
	ctx := context.Background()
	f := openT(t, fileURL(t.TempDir()), nil)
	m := openT(t, "mem://", nil)
	data := []byte(`[{"userId":1,"id":1,"title":"t","body":"b"}]`)
	fo, err := f.Put(ctx, "raw/posts.json", data, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	mo, err := m.Put(ctx, "raw/posts.json", data, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if fo.ETag != mo.ETag || fo.ETag != storetest.MD5Hex(data) {
		t.Errorf("file ETag %q, mem ETag %q; want both %q", fo.ETag, mo.ETag, storetest.MD5Hex(data))
	}
}

func TestOpenAcceptsAndDescribesEachScheme(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "lake")
	f := openT(t, fileURL(dir), nil)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("file store directory was not created: %v", err)
	}
	if f.Bucket() != "lake" || f.LocalDir() != dir || f.URL() != fileURL(dir) {
		t.Errorf("file store: Bucket %q LocalDir %q URL %q", f.Bucket(), f.LocalDir(), f.URL())
	}
	m := openT(t, "mem://", nil)
	if m.Bucket() != "mem" || m.LocalDir() != "" {
		t.Errorf("mem store: Bucket %q LocalDir %q", m.Bucket(), m.LocalDir())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	raw := "s3://raw-zone?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true&disable_https=true"
	s := openT(t, raw, nil)
	defer s.Close()
	if s.Bucket() != "raw-zone" || s.LocalDir() != "" || s.URL() != raw {
		t.Errorf("s3 store: Bucket %q LocalDir %q URL %q", s.Bucket(), s.LocalDir(), s.URL())
	}
	openT(t, "s3://b?region=eu-west-1&hostname_immutable=true&endpoint=http://localhost:9000", nil).Close()
}

func TestOpenRejectsBadURLsWithAHint(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"file://relative/dir", "absolute path"},
		{"file:relative", "absolute path"},
		{"file:///tmp/x?metadata=skip", "a file:// store takes no query parameters"},
		{"mem:///path", "mem://"},
		{"mem://?x=1", "no path or query"},
		{"s3://", "no bucket"},
		{"s3://bucket/prefix", "whole bucket"},
		{"s3://bucket?no_such_param=1", "no_such_param"},
		{"s3://bucket?use_path_style=maybe", "use_path_style"},
		{"gs://bucket", "unsupported scheme"},
		{"/just/a/path", "unsupported scheme"},
		{"::", "not a URL"},
	} {
		_, err := store.Open(context.Background(), tc.url, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) error = %v; want one mentioning %q", tc.url, err, tc.want)
		}
	}
}

func TestURLRedactsSecrets(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	s, err := store.Open(context.Background(), "s3://user:hunter2@bucket?region=us-east-1", nil)
	if err == nil {
		defer s.Close()
		if strings.Contains(s.URL(), "hunter2") {
			t.Errorf("URL() = %q leaks the password", s.URL())
		}
	} else if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q leaks the password", err)
	}
	_, err = store.Open(context.Background(), "gs://u:hunter2@b?token=s3cr3t", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v leaks a secret", err)
	}
}

func TestValidateKeyAcceptsRelativeCleanPaths(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"data/2020-08-07_2PM/hydropower-consumption.csv", true},
		{"a", true},
		{"a b+c%20d", true},
		{"_SUCCESS", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a/./b", false},
		{"a/../b", false},
		{"..", false},
		{"a\\b", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"\xc3\x28", false},
	} {
		err := store.ValidateKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateKey(%q) = %v; want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) error %v does not wrap ErrInvalidKey", tc.key, err)
		}
	}
}

// FuzzValidateKey checks that every accepted key is a clean relative path, so
// it maps to exactly one file inside a file:// store's directory.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a/b.csv", "../x", "a//b", "/", "a/./b", "a\\b", "..a/b..", "ü/ß", "a/b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if store.ValidateKey(key) != nil {
			return
		}
		if path.Clean(key) != key || strings.HasPrefix(key, "/") || key == "." {
			t.Fatalf("accepted key %q is not a clean relative path", key)
		}
		p := filepath.Join("/base/dir", filepath.FromSlash(key))
		if !strings.HasPrefix(p, "/base/dir/") {
			t.Fatalf("accepted key %q maps outside the directory: %s", key, p)
		}
	})
}

// FuzzOpenNeverLeaksPasswords opens URLs with a password under an
// unsupported scheme (so nothing is created) and checks the error never
// contains the password.
func FuzzOpenNeverLeaksPasswords(f *testing.F) {
	f.Add("gs", "hunter22", "bucket")
	f.Add("s3x", "p@ss:word/", "b")
	f.Fuzz(func(t *testing.T, scheme, pw, host string) {
		u := &url.URL{Scheme: scheme, User: url.UserPassword("u", pw), Host: host}
		raw := u.String()
		if len(pw) < 6 || strings.Contains(raw, "xxxxx") {
			return
		}
		if pu, err := url.Parse(raw); err == nil && (pu.Scheme == "file" || pu.Scheme == "mem" || pu.Scheme == "s3") {
			return
		}
		_, err := store.Open(context.Background(), raw, nil)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", raw)
		}
		msg := err.Error()
		for _, secret := range []string{pw, url.UserPassword("u", pw).String()[2:]} {
			if len(secret) >= 6 && strings.Contains(msg, secret) && !strings.Contains(scheme+"://xxxxx@"+host, secret) {
				t.Fatalf("Open(%q) error %q leaks the password", raw, msg)
			}
		}
	})
}

func TestFileStoreHidesTemporaryFilesAndLegacySidecars(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	if _, err := s.Put(ctx, "d/a.csv", []byte("a"), "text/csv"); err != nil {
		t.Fatal(err)
	}
	// A write in progress, and the sidecar an older sluice (gocloud's
	// fileblob) wrote next to d/a.csv.
	writeFile(t, dir, "d/.sluice\\18c2f5e0a1b2c3d4.tmp", []byte("partial"))
	writeFile(t, dir, "d/a.csv.attrs", []byte(`{"user.content_type":"text/csv","md5":"DMF1ucDxtqgxw5niaXcmYQ=="}`))
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "d/a.csv" {
		t.Errorf("List = %+v; want only d/a.csv", objs)
	}
	ign, err := s.Ignored(ctx, "")
	if err != nil || len(ign) != 0 {
		t.Errorf("Ignored = %+v, %v; want none", ign, err)
	}
	if err := s.Delete(ctx, "d/a.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d", "a.csv.attrs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Delete left the legacy sidecar behind: %v", err)
	}
}

func TestNamesOnceReservedInAFileStoreAreOrdinaryKeys(t *testing.T) {
	ctx := context.Background()
	s := openT(t, fileURL(t.TempDir()), nil)
	for _, key := range []string{"x.attrs", "d/a.csv.attrs", "a.csv.0123456789abcdef.tmp"} {
		if _, err := s.Put(ctx, key, []byte("x"), ""); err != nil {
			t.Errorf("Put(%q) = %v; want it stored like on every other backend", key, err)
		}
	}
	objs, err := s.List(ctx, "")
	if err != nil || len(objs) != 3 {
		t.Errorf("List = %+v, %v; want the 3 objects", objs, err)
	}
}

func TestSweepTempDeletesOnlyStaleTemporaryFilesAndOpenNone(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "d", ".sluice\\18c2f5e0a1b2c3d4.tmp")
	fresh := filepath.Join(dir, "d", ".sluice\\18c2f5e0a1b2c3d5.tmp")
	user := filepath.Join(dir, "d", "report.tmp")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, fresh, user} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	old := now.Add(-store.StaleTempAge - time.Minute)
	for _, p := range []string{stale, user} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	s := openT(t, fileURL(dir), &store.Options{Clock: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("Open touched the directory (it must stay cheap for put and job processes): %v", err)
	}
	if err := s.SweepTemp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file survived SweepTemp: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary file young enough to be a write in progress was deleted: %v", err)
	}
	if _, err := os.Stat(user); err != nil {
		t.Errorf("an ordinary file named *.tmp was deleted: %v", err)
	}
	if n := strings.Count(logged.String(), "\n"); n != 1 || !strings.Contains(logged.String(), "count=1") {
		t.Errorf("sweep logged %q; want 1 line counting 1 file", logged.String())
	}
}

func TestFilesFromOtherProgramsGetAnMD5ETagAndAGuessedType(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	data := []byte("Entity,Code,Year,Hydropower (Terawatt-hours)\n")
	if err := os.MkdirAll(filepath.Join(dir, "data", "2020-08-07"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "2020-08-07", "h.csv"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := s.Stat(context.Background(), "data/2020-08-07/h.csv")
	if err != nil {
		t.Fatal(err)
	}
	if o.ETag != storetest.MD5Hex(data) || o.Size != int64(len(data)) || !strings.HasPrefix(o.ContentType, "text/csv") {
		t.Errorf("Stat = %+v; want MD5 ETag %s and text/csv", o, storetest.MD5Hex(data))
	}
}

func TestAFileRewrittenByAnotherProgramGetsItsNewETag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	w, err := s.Put(ctx, "a.csv", []byte("old,content\n"), "text/csv")
	if err != nil {
		t.Fatal(err)
	}
	// Another program overwrites the file in place, same size, and puts
	// the old mtime back.
	newData := []byte("new,content\n")
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), newData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "a.csv"), w.ModTime, w.ModTime); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*store.Store{s, openT(t, fileURL(dir), nil)} { // warm cache, and after a restart
		o, err := st.Stat(ctx, "a.csv")
		if err != nil {
			t.Fatal(err)
		}
		if o.ETag != storetest.MD5Hex(newData) {
			t.Errorf("ETag after an outside rewrite = %s; want %s (the remembered MD5 must not be lent to new content)", o.ETag, storetest.MD5Hex(newData))
		}
	}
}

func TestSluiceWrittenFilesKeepTheirETagAfterARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := openT(t, fileURL(dir), nil).Put(ctx, "p/x.json", []byte(`{"a":1}`), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := openT(t, fileURL(dir), nil).Stat(ctx, "p/x.json")
	if err != nil {
		t.Fatal(err)
	}
	if o.ETag != w.ETag || o.ContentType != "application/json" || !o.ModTime.Equal(w.ModTime) {
		t.Errorf("after restart Stat = %+v; want %+v", o, w)
	}
}

func TestDeletingADirectoryNameIsNotFound(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "empty"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete(directory) = %v; want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "empty")); err != nil {
		t.Errorf("Delete removed a directory: %v", err)
	}
}

func TestAKeyBelowAnObjectIsRejectedInAFileStore(t *testing.T) {
	ctx := context.Background()
	s := openT(t, fileURL(t.TempDir()), nil)
	if _, err := s.Put(ctx, "a.csv", []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(ctx, "a.csv/b", []byte("y"), "")
	if !errors.Is(err, store.ErrInvalidKey) || !strings.Contains(err.Error(), `"a.csv/b"`) {
		t.Errorf("Put(a.csv/b) = %v; want ErrInvalidKey naming the key", err)
	}
	if _, err := s.Put(ctx, "d/e", []byte("y"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "d", []byte("z"), ""); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Put(d) over a prefix = %v; want ErrInvalidKey", err)
	}
}

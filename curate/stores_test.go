package curate

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// localStore is a file store rooted at a directory, like sluice's file://
// store: atomic writes by temp file and rename, and listing that skips path
// segments starting with "." or "_temporary" (what the real store must do).
type localStore struct{ root string }

var _ Store = (*localStore)(nil)

func newLocalStore(t *testing.T) *localStore {
	t.Helper()
	root, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &localStore{root: root}
}

func (s *localStore) LocalDir() string { return s.root }

func (s *localStore) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.root {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_temporary") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := md5.Sum(data)
		out = append(out, Object{Key: key, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:])})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

func (s *localStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(s.root, filepath.FromSlash(key)))
}

func (s *localStore) Write(ctx context.Context, key string, r io.Reader, contentType string) error {
	p := filepath.Join(s.root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".write-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func (s *localStore) Delete(ctx context.Context, key string) error {
	return os.Remove(filepath.Join(s.root, filepath.FromSlash(key)))
}

// put writes a test input file.
func (s *localStore) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := s.Write(context.Background(), key, bytes.NewReader(data), "text/csv"); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns every file and directory under the top folder of prefix,
// hidden ones included, with contents: it proves both byte-identical output
// and the absence of staging leftovers.
func (s *localStore) snapshot(t *testing.T, prefix string) map[string]string {
	t.Helper()
	top := filepath.Join(s.root, strings.SplitN(prefix, "/", 2)[0])
	snap := map[string]string{}
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		if d.IsDir() {
			snap[filepath.ToSlash(rel)+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(p)
		snap[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return snap
}

// memStore is an in-memory store without LocalDir, like S3. It records the
// order of writes and deletes.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	ops     []string // "write key" / "delete key"
	// afterOp, if set, is called under the lock after each write or delete
	// with the operation and the objects as they are then.
	afterOp func(op string, objects map[string][]byte)
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{objects: map[string][]byte{}} }

func (s *memStore) LocalDir() string { return "" }

func (s *memStore) List(ctx context.Context, prefix string) ([]Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Object
	for k, v := range s.objects {
		if strings.HasPrefix(k, prefix) {
			sum := md5.Sum(v)
			out = append(out, Object{Key: k, Size: int64(len(v)), ETag: hex.EncodeToString(sum[:])})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *memStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("memstore: %q: %w", key, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(v)), nil
}

func (s *memStore) Write(ctx context.Context, key string, r io.Reader, contentType string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = data
	s.ops = append(s.ops, "write "+key)
	if s.afterOp != nil {
		s.afterOp("write "+key, s.objects)
	}
	return nil
}

func (s *memStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; !ok {
		return fmt.Errorf("memstore: delete %q: %w", key, fs.ErrNotExist)
	}
	delete(s.objects, key)
	s.ops = append(s.ops, "delete "+key)
	if s.afterOp != nil {
		s.afterOp("delete "+key, s.objects)
	}
	return nil
}

func (s *memStore) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := s.Write(context.Background(), key, bytes.NewReader(data), "text/csv"); err != nil {
		t.Fatal(err)
	}
}

func (s *memStore) snapshot(t *testing.T, prefix string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	top := strings.SplitN(prefix, "/", 2)[0] + "/"
	snap := map[string]string{}
	for k, v := range s.objects {
		if strings.HasPrefix(k, top) {
			snap[k] = string(v)
		}
	}
	return snap
}

// testStore is what the tests need from both stores.
type testStore interface {
	Store
	put(t *testing.T, key string, data []byte)
	snapshot(t *testing.T, prefix string) map[string]string
}

// bothStores runs f against a local file store and an in-memory store.
func bothStores(t *testing.T, f func(t *testing.T, st testStore)) {
	t.Run("local", func(t *testing.T) { f(t, newLocalStore(t)) })
	t.Run("memory", func(t *testing.T) { f(t, newMemStore()) })
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file holds what a file:// store does beside gocloud's fileblob:
// reading (so the ETag describes exactly the open file), listing (so
// temporary files and sidecars stay hidden and unreadable directories are
// errors rather than silently skipped), and sweeping crash leftovers.
// Writing and deleting go through fileblob.

// attrsExt is fileblob's sidecar suffix.
const attrsExt = ".attrs"

// sidecarWindow bounds how long after its sidecar a file may have been
// renamed into place for the sidecar's MD5 to be trusted. fileblob writes the
// sidecar and renames immediately after.
const sidecarWindow = time.Second

// isTempName reports whether a file name is shaped like a fileblob temporary
// file: "<name>.<16 lowercase hex digits>.tmp".
func isTempName(name string) bool {
	const suffix = ".tmp"
	if !strings.HasSuffix(name, suffix) {
		return false
	}
	rest := strings.TrimSuffix(name, suffix)
	dot := strings.LastIndexByte(rest, '.')
	if dot < 1 || len(rest)-dot-1 != 16 {
		return false
	}
	for _, c := range rest[dot+1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// path maps a validated key to its file. Valid keys need none of fileblob's
// escaping, so the mapping is the plain join fileblob also uses.
func (s *Store) path(key string) string { return filepath.Join(s.dir, filepath.FromSlash(key)) }

// sweepTemp deletes temporary files older than StaleTempAge.
func (s *Store) sweepTemp() error {
	cutoff := s.clock().Add(-StaleTempAge)
	var swept int
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isTempName(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed into place meanwhile
		}
		if err != nil {
			return err
		}
		if fi.ModTime().Before(cutoff) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			swept++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: sweeping stale temporary files: %v (check the directory's permissions)", s.url, err)
	}
	if swept > 0 {
		s.logf("store %s: deleted %d temporary file(s) older than %v left by an interrupted write", s.url, swept, StaleTempAge)
	}
	return nil
}

// ignoredFile is a file in a file:// directory that is not an object, with
// the reason; the watcher logs these so that no file is skipped silently.
type ignoredFile struct {
	Path   string
	Reason string
}

// listLocal walks the directory. Temporary files and sidecars are skipped;
// files that cannot be objects are returned as ignored.
func (s *Store) listLocal(ctx context.Context, prefix string) ([]Object, []ignoredFile, error) {
	root := s.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		root = filepath.Join(s.dir, filepath.FromSlash(prefix[:i]))
	}
	var objs []Object
	var ignored []ignoredFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // nothing under this prefix
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed during the walk
			}
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p == s.dir {
				return nil
			}
			dk := key + "/"
			if !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		name := d.Name()
		if isTempName(name) {
			return nil // a write in progress
		}
		if strings.HasSuffix(name, attrsExt) {
			if _, err := os.Lstat(strings.TrimSuffix(p, attrsExt)); errors.Is(err, fs.ErrNotExist) {
				ignored = append(ignored, ignoredFile{p, fmt.Sprintf("names ending in %q are reserved for metadata sidecars in a file:// store (an orphaned sidecar, or a file to rename)", attrsExt)})
			}
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(p)
			if err != nil {
				ignored = append(ignored, ignoredFile{p, fmt.Sprintf("symbolic link cannot be followed: %v", err)})
				return nil
			}
		}
		if !fi.Mode().IsRegular() {
			ignored = append(ignored, ignoredFile{p, "not a regular file"})
			return nil
		}
		if err := ValidateKey(key); err != nil {
			ignored = append(ignored, ignoredFile{p, fmt.Sprintf("its name is not a valid key: %v", err)})
			return nil
		}
		objs = append(objs, Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs, ignored, nil
}

// isNotExist reports whether err means there is no file at a path, including
// when a parent is a file ("a.csv/x").
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// openLocal opens key's file and describes the version it holds.
func (s *Store) openLocal(ctx context.Context, key string) (*os.File, Object, error) {
	p := s.path(key)
	f, err := os.Open(p)
	if isNotExist(err) {
		return nil, Object{}, ErrNotFound
	}
	if err != nil {
		return nil, Object{}, err
	}
	o, err := s.describe(ctx, f, p, key)
	if err != nil {
		_ = f.Close()
		return nil, Object{}, err
	}
	return f, o, nil
}

// describe returns the Object for the open file f at p: from the cache, else
// from a sidecar that provably belongs to it, else by hashing f itself.
func (s *Store) describe(ctx context.Context, f *os.File, p, key string) (Object, error) {
	fi, err := f.Stat()
	if err != nil {
		return Object{}, err
	}
	if fi.IsDir() {
		return Object{}, ErrNotFound // a "directory" of other keys
	}
	o := Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	id, hasID := identityOf(fi)
	if hasID {
		if e, ok := s.etags.get(id); ok {
			o.ETag, o.ContentType = e.etag, e.contentType
			return o, nil
		}
		if etag, ct, ok := s.trustedSidecar(p, id); ok {
			o.ETag, o.ContentType = etag, ct
			s.etags.put(id, o.ETag, o.ContentType)
			return o, nil
		}
	}
	etag, n, err := hashReader(ctx, io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return Object{}, fmt.Errorf("computing MD5: %w", err)
	}
	after, err := f.Stat()
	if err != nil {
		return Object{}, err
	}
	if n != fi.Size() || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		return Object{}, fmt.Errorf("file changed while its MD5 was computed (%d bytes, then %d): it is still being written; try again once it is complete", fi.Size(), after.Size())
	}
	o.ETag = etag
	o.ContentType = typeByExtension(key)
	if hasID {
		s.etags.put(id, o.ETag, o.ContentType)
	}
	return o, nil
}

// trustedSidecar returns the MD5 and content type from p's sidecar if the
// sidecar belongs to the file with identity id: p still is that file, and the
// file was renamed into place (its ctime) within sidecarWindow after the
// sidecar was written (fileblob writes the sidecar, then renames). A file
// copied or rewritten over p later has a later ctime, so an old sidecar is
// never trusted for new content.
func (s *Store) trustedSidecar(p string, id fileID) (etag, contentType string, ok bool) {
	cur, err := os.Stat(p)
	if err != nil {
		return "", "", false
	}
	if cid, ok := identityOf(cur); !ok || cid != id {
		return "", "", false
	}
	sc, scTime, ok := readSidecar(p)
	if !ok || len(sc.MD5) != 16 {
		return "", "", false
	}
	ctime := time.Unix(0, id.ctime)
	if ctime.Before(scTime) || ctime.Sub(scTime) > sidecarWindow {
		return "", "", false
	}
	return hex.EncodeToString(sc.MD5), sc.ContentType, true
}

// sidecar is the part of fileblob's ".attrs" JSON that sluice reads.
type sidecar struct {
	ContentType string `json:"user.content_type"`
	MD5         []byte `json:"md5"`
}

func readSidecar(p string) (sidecar, time.Time, bool) {
	f, err := os.Open(p + attrsExt)
	if err != nil {
		return sidecar{}, time.Time{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sidecar{}, time.Time{}, false
	}
	var sc sidecar
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&sc); err != nil {
		return sidecar{}, time.Time{}, false
	}
	return sc, fi.ModTime(), true
}

func typeByExtension(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// fileID identifies one file version: same inode, size, mtime and ctime.
// ctime cannot be set by programs, so a rewrite always changes the identity.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

type etagEntry struct{ etag, contentType string }

// etagCache remembers computed ETags by file identity.
type etagCache struct {
	mu sync.Mutex
	m  map[fileID]etagEntry
}

// maxCachedETags bounds the cache; it is emptied when full.
const maxCachedETags = 200_000

func newETagCache() *etagCache { return &etagCache{m: make(map[fileID]etagEntry)} }

func (c *etagCache) get(id fileID) (etagEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	return e, ok
}

func (c *etagCache) put(id fileID, etag, contentType string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedETags {
		clear(c.m)
	}
	c.m[id] = etagEntry{etag, contentType}
}

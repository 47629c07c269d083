package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// This file is the file:// backend. Every file operation goes through an
// os.Root opened on the store directory, so no path — a key, a symbolic link
// in the directory, or a link swapped in by another program between two
// calls — can make sluice read, write, rename or delete outside it.

// tempPrefix starts the name of every temporary file a file:// store
// writes. The backslash makes it a name no valid key has (ValidateKey rejects
// backslashes), so no user file is ever mistaken for one.
const tempPrefix = ".sluice\\"

// tempName returns a new temporary file name: tempPrefix, 16 random
// lowercase hex digits, ".tmp".
func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return tempPrefix + hex.EncodeToString(b[:]) + ".tmp"
}

// isTempName reports whether a file name is one tempName makes.
func isTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ".tmp")
	if !ok || len(rest) != 16 {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// legacyAttrsExt is the suffix of the metadata sidecars gocloud's fileblob
// wrote next to each object before sluice had its own file:// backend.
const legacyAttrsExt = ".attrs"

// rel maps a validated key to its path relative to the root. Valid keys are
// clean relative paths, so the mapping is a plain separator change.
func rel(key string) string { return filepath.FromSlash(key) }

// errOutside marks a path that leaves the store directory through a
// symbolic link.
var errOutside = errors.New("a symbolic link on this path leads outside the store directory, and sluice never follows it (copy the file into the store, or point the store at the directory the link leads to)")

// localErr maps an os.Root error to ErrNotFound or errOutside where it is
// one of those.
func localErr(err error) error {
	switch {
	case err == nil:
		return nil
	case isNotExist(err):
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case isEscape(err):
		return errOutside
	}
	return err
}

// isEscape reports whether err is os.Root refusing a path that leaves the
// root. os.Root does not export that error; its text is stable.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// isNotExist reports whether err means there is no file at a path, including
// when a parent is a file ("a.csv/x").
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// maxNameLen is the longest file or folder name Linux file systems take
// (NAME_MAX).
const maxNameLen = 255

// writeLocal writes r to key through a temporary file in the key's
// directory: write and hash, fsync, rename into place, fsync the directory.
func (s *Store) writeLocal(ctx context.Context, key string, r io.Reader, contentType string) (Object, error) {
	for seg := range strings.SplitSeq(key, "/") {
		if len(seg) > maxNameLen {
			return Object{}, s.errorf("write", key, fmt.Errorf("%w: a part of the key is %d bytes, and a file:// store's file system takes at most %d bytes per folder or file name: shorten it (an s3:// store takes it)", ErrInvalidKey, len(seg), maxNameLen))
		}
	}
	name := rel(key)
	dir := filepath.Dir(name)
	if dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
				err = fmt.Errorf("%w: part of %q is an object in this file:// store, so it cannot also be a prefix of other objects", ErrInvalidKey, key)
			}
			return Object{}, s.errorf("write", key, localErr(err))
		}
	}
	tmp := filepath.Join(dir, tempName())
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Object{}, s.errorf("write", key, localErr(err))
	}
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = s.root.Remove(tmp)
		}
	}()
	h := md5.New()
	src := &recordingReader{r: r}
	var head []byte
	if contentType == "" {
		// Sniff the type from the first 512 bytes, as S3 clients do.
		head = make([]byte, 512)
		n, err := io.ReadFull(ctxReader{ctx, src}, head)
		head = head[:n]
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return Object{}, s.writeErr(key, 0, err, src)
		}
		contentType = http.DetectContentType(head)
	}
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, io.MultiReader(bytes.NewReader(head), src)})
	if err != nil {
		return Object{}, s.writeErr(key, n, err, src)
	}
	if err := f.Sync(); err != nil {
		return Object{}, s.errorf("write", key, fmt.Errorf("fsync: %w", err))
	}
	if err := ctx.Err(); err != nil {
		return Object{}, s.errorf("write", key, err)
	}
	if err := s.root.Rename(tmp, name); err != nil {
		err = localErr(err)
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			err = fmt.Errorf("%w: %q is a prefix of other objects in this file:// store, so it cannot also be an object", ErrInvalidKey, key)
		}
		return Object{}, s.errorf("write", key, err)
	}
	// The identity is taken from the open file after the rename (which
	// changes its ctime), so it is this version's even if another program
	// replaces the file right away.
	fi, err := f.Stat()
	if err != nil {
		return Object{}, s.errorf("write", key, err)
	}
	o := Object{Key: key, Size: fi.Size(), ETag: hex.EncodeToString(h.Sum(nil)), ModTime: fi.ModTime(), ContentType: contentType}
	if id, ok := identityOf(fi); ok {
		// Remembered as this Store's own version before the file is
		// closed: a watcher takes it as complete only after the close
		// (see "Watching" in the package doc), so it finds the mark.
		s.etags.put(id, etagEntry{etag: o.ETag, contentType: o.ContentType, own: true})
		o.fp = id.String()
	}
	done = true
	if err := f.Close(); err != nil {
		return Object{}, s.errorf("write", key, err)
	}
	if err := s.syncDir(dir); err != nil {
		return Object{}, s.errorf("write", key, fmt.Errorf("fsync directory: %w", err))
	}
	return o, nil
}

func (s *Store) writeErr(key string, n int64, err error, src *recordingReader) error {
	if src.err != nil && err == src.err { // the caller's reader failed: keep its error for errors.Is
		return fmt.Errorf("store %s: write %q: reading the input after %d bytes: %w", s.url, key, n, err)
	}
	return s.errorf("write", key, fmt.Errorf("after %d bytes: %w", n, err))
}

// syncDir fsyncs a directory so a rename or removal in it survives a crash.
func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) { // some file systems cannot fsync directories
		return err
	}
	return nil
}

// openLocal opens key's file and describes the version it holds.
func (s *Store) openLocal(ctx context.Context, key string) (*os.File, Object, error) {
	f, err := s.root.Open(rel(key))
	if err != nil {
		return nil, Object{}, localErr(err)
	}
	o, err := s.describe(ctx, f, key)
	if err != nil {
		_ = f.Close()
		return nil, Object{}, err
	}
	return f, o, nil
}

// describe returns the Object for the open file f: the ETag from the cache
// when this identity was hashed or written before, else by hashing f.
func (s *Store) describe(ctx context.Context, f *os.File, key string) (Object, error) {
	fi, err := f.Stat()
	if err != nil {
		return Object{}, err
	}
	if fi.IsDir() {
		return Object{}, ErrNotFound // a "directory" of other keys
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	o := Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	id, hasID := identityOf(fi)
	if hasID {
		o.fp = id.String()
		if e, ok := s.etags.get(id); ok {
			o.ETag, o.ContentType = e.etag, e.contentType
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
	// ctime is left out: replacing the file by a rename unlinks this one,
	// which changes its ctime but not its content (the open descriptor
	// still reads the old bytes).
	aid, _ := identityOf(after)
	aid.ctime = id.ctime
	if n != fi.Size() || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) || aid != id {
		return Object{}, fmt.Errorf("file changed while its MD5 was computed (%d bytes, then %d): it is still being written; try again once it is complete", fi.Size(), after.Size())
	}
	o.ETag = etag
	o.ContentType = typeByExtension(key)
	if hasID {
		s.etags.put(id, etagEntry{etag: o.ETag, contentType: o.ContentType})
	}
	return o, nil
}

// wroteHere reports whether the open file f is a version this Store wrote
// (Write or Put): its writer announces it (see "Watching" in the package
// doc).
func (s *Store) wroteHere(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	id, ok := identityOf(fi)
	if !ok {
		return false
	}
	e, ok := s.etags.get(id)
	return ok && e.own
}

// deleteLocal removes key's file, and the legacy fileblob sidecar next to it.
func (s *Store) deleteLocal(key string) error {
	name := rel(key)
	fi, err := s.root.Lstat(name)
	if err != nil {
		return localErr(err)
	}
	if fi.IsDir() {
		return ErrNotFound
	}
	if err := s.root.Remove(name); err != nil {
		return localErr(err)
	}
	if s.isLegacySidecar(name + legacyAttrsExt) {
		_ = s.root.Remove(name + legacyAttrsExt)
	}
	return s.syncDir(filepath.Dir(name))
}

// SweepTemp deletes sluice's own temporary files older than StaleTempAge
// from a file:// store: leftovers of writes that crashed. Only names that
// temporary files get are candidates, and no valid key has one. It walks the
// whole directory, so the process that owns the store runs it when it
// starts, not every command that opens the store (`sluice put`, a job
// process). Other stores have none; it does nothing there.
func (s *Store) SweepTemp(ctx context.Context) error {
	if s.root == nil {
		return nil
	}
	cutoff := s.clock().Add(-StaleTempAge)
	var swept int
	err := fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != "." && (isNotExist(err) || isEscape(err)) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || !isTempName(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil // renamed into place meanwhile
		}
		if err != nil {
			return err
		}
		if fi.ModTime().Before(cutoff) {
			if err := s.root.Remove(filepath.FromSlash(p)); err != nil && !isNotExist(err) {
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
		s.log.Info("store: deleted temporary files left by an interrupted write", "store", s.url, "count", swept, "older_than", StaleTempAge)
	}
	return nil
}

// IgnoredFile is a file in a file:// store that cannot be an object, with
// the reason and what to do about it.
type IgnoredFile struct {
	// Name is the path relative to the store directory, "/"-separated.
	Name string
	// Path is the file's path on this machine.
	Path   string
	Reason string
}

// PrintablePath is Path as a terminal may show it: as it is when every
// character is printable, else quoted with escapes, so that a file named
// with ESC sequences cannot rewrite the operator's terminal.
func (f IgnoredFile) PrintablePath() string {
	for _, r := range f.Path {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.Quote(f.Path)
		}
	}
	return f.Path
}

// Ignored returns the files under prefix in a file:// store that are not
// objects, sorted by name: invalid key names (backslashes, control
// characters, paths over MaxKeyLen bytes, ...), symbolic links leading
// outside the store or to directories, and other non-regular files. Other
// stores have none. sluice's own temporary files and legacy fileblob
// sidecars next to their file are neither objects nor reported.
func (s *Store) Ignored(ctx context.Context, prefix string) ([]IgnoredFile, error) {
	if s.root == nil {
		return nil, nil
	}
	if prefix != "" {
		if err := ValidateKey(prefix + "x"); err != nil {
			return nil, fmt.Errorf("store %s: list ignored files under prefix %q: %w", s.url, prefix, err)
		}
	}
	_, ignored, err := s.listLocal(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("store %s: list ignored files under prefix %q: %w", s.url, prefix, err)
	}
	return ignored, nil
}

// listLocal walks the directory under prefix, returning the objects (Key,
// Size, ModTime and the identity fingerprint) and the files that cannot be
// objects.
func (s *Store) listLocal(ctx context.Context, prefix string) ([]Object, []IgnoredFile, error) {
	var objs []Object
	ignored, err := s.walkLocal(ctx, prefix, func(o Object) error { objs = append(objs, o); return nil })
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs, ignored, nil
}

// walkLocal calls emit for every object of the local store under prefix,
// in directory-walk order (each directory's entries by name), and returns
// the files that cannot be objects, sorted; emit's error stops the walk.
func (s *Store) walkLocal(ctx context.Context, prefix string, emit func(Object) error) ([]IgnoredFile, error) {
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var ignored []IgnoredFile
	ignore := func(p, why string) {
		ignored = append(ignored, IgnoredFile{Name: p, Path: filepath.Join(s.dir, filepath.FromSlash(p)), Reason: why})
	}
	err := fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			switch {
			case isNotExist(err):
				return nil // nothing under this prefix, or removed during the walk
			case isEscape(err):
				if strings.HasPrefix(p, prefix) || strings.HasPrefix(prefix, p+"/") {
					ignore(p, errOutside.Error())
				}
				return nil
			}
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if d.IsDir() {
			if p == "." {
				return nil
			}
			dk := p + "/"
			if !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		o, why, ok := s.localEntry(p, fi)
		if why != "" {
			ignore(p, why)
		}
		if !ok {
			return nil
		}
		return emit(o)
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ignored, func(i, j int) bool { return ignored[i].Name < ignored[j].Name })
	return ignored, nil
}

// localEntry classifies the directory entry at p ("/"-separated, relative
// to the store directory) whose Lstat is fi: an object (ok, with Key, Size,
// ModTime and the identity fingerprint), a file that cannot be one (why
// says what is wrong and what to do), or neither — a directory, sluice's
// own temporary file, or a legacy sidecar next to its file.
func (s *Store) localEntry(p string, fi fs.FileInfo) (o Object, why string, ok bool) {
	name := path.Base(p)
	if fi.IsDir() || isTempName(name) {
		return Object{}, "", false // a "directory" of other keys, or a write in progress
	}
	link := fi.Mode()&fs.ModeSymlink != 0
	if link {
		var err error
		fi, err = s.root.Stat(filepath.FromSlash(p))
		switch {
		case isEscape(err):
			return Object{}, errOutside.Error(), false
		case err != nil:
			if _, lerr := s.root.Lstat(filepath.FromSlash(p)); isNotExist(lerr) {
				return Object{}, "", false // the link itself was removed meanwhile
			}
			return Object{}, fmt.Sprintf("a symbolic link that cannot be followed: %v (fix or remove the link)", err), false
		case fi.IsDir():
			return Object{}, "a symbolic link to a directory, which sluice does not follow (move the directory into the store instead)", false
		}
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Sprintf("not a regular file (%v)", fi.Mode().Type()), false
	}
	if err := ValidateKey(p); err != nil {
		why := strings.TrimPrefix(err.Error(), fmt.Sprintf("%v %q: ", ErrInvalidKey, p))
		return Object{}, fmt.Sprintf("its name is not a valid key: %s (rename the file)", why), false
	}
	if strings.HasSuffix(name, legacyAttrsExt) && s.isLegacySidecar(filepath.FromSlash(p)) {
		if sib, err := s.root.Lstat(filepath.FromSlash(strings.TrimSuffix(p, legacyAttrsExt))); err == nil && !sib.IsDir() {
			return Object{}, "", false // metadata of the file next to it, written by sluice before v0.x
		}
		return Object{}, "a metadata sidecar left by an older sluice for a file that is gone (delete it)", false
	}
	o = Object{Key: p, Size: fi.Size(), ModTime: fi.ModTime(), link: link}
	if id, ok := identityOf(fi); ok {
		o.fp = id.String()
	}
	return o, "", true
}

// localObject is localEntry for one key, looked up now: ErrNotFound when
// nothing (or a directory) is there.
func (s *Store) localObject(key string) (o Object, why string, err error) {
	fi, err := s.root.Lstat(filepath.FromSlash(key))
	if err != nil {
		if isEscape(err) {
			return Object{}, errOutside.Error(), nil
		}
		return Object{}, "", localErr(err)
	}
	o, why, ok := s.localEntry(key, fi)
	if !ok && why == "" {
		return Object{}, "", ErrNotFound
	}
	return o, why, nil
}

// isLegacySidecar reports whether the file at name (relative to the root) is
// a metadata sidecar gocloud's fileblob wrote: a small JSON object holding
// an "md5" and only fileblob's keys. The verdict is cached by file identity.
func (s *Store) isLegacySidecar(name string) bool {
	f, err := s.root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 64<<10 {
		return false
	}
	id, hasID := identityOf(fi)
	if hasID {
		if v, ok := s.sidecars.Load(id); ok {
			return v.(bool)
		}
	}
	var m map[string]json.RawMessage
	ok := json.NewDecoder(f).Decode(&m) == nil
	if ok {
		var md5b64 string
		ok = json.Unmarshal(m["md5"], &md5b64) == nil
		if b, err := base64.StdEncoding.DecodeString(md5b64); err != nil || len(b) != md5.Size {
			ok = false
		}
		for k := range m {
			switch k {
			case "user.cache_control", "user.content_disposition", "user.content_encoding",
				"user.content_language", "user.content_type", "user.metadata", "md5":
			default:
				ok = false
			}
		}
	}
	if hasID {
		s.sidecars.Store(id, ok)
	}
	return ok
}

func typeByExtension(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// fileID identifies one file version: same device, inode, size, mtime and
// ctime. Programs cannot set ctime, and writing, truncating, renaming or
// chmod-ing a file all advance it, so a replacement — even one that restores
// size and mtime, like cp -p — always changes the identity.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

// String is the identity as a fingerprint: "dev:ino:size:mtime:ctime", times
// in nanoseconds.
func (id fileID) String() string {
	return fmt.Sprintf("%d:%d:%d:%d:%d", id.dev, id.ino, id.size, id.mtime, id.ctime)
}

// etagEntry is what etagCache remembers of one file identity; own says
// that this Store wrote that version.
type etagEntry struct {
	etag, contentType string
	own               bool
}

// etagCache remembers computed ETags by file identity, and which versions
// the Store wrote itself.
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

func (c *etagCache) put(id fileID, e etagEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedETags {
		clear(c.m)
	}
	c.m[id] = e
}

// Package store is sluice's object store: one Store type opened by URL.
//
//	file:///abs/dir     a local directory (created if missing); the default
//	mem://              in memory, for tests; every Open is a new empty store
//	s3://bucket?...     AWS S3 or any S3-compatible server (MinIO, versitygw)
//
// mem:// and s3:// use gocloud.dev/blob; file:// is sluice's own backend on
// an os.Root (see "Local stores" below).
//
// S3 URLs accept the query parameters of gocloud's s3blob (v0.47): endpoint,
// region, profile, use_path_style (or s3ForcePathStyle), hostname_immutable,
// disable_https, dualstack, fips, anonymous, accelerate, ssetype, kmskeyid,
// rate_limiter_capacity, role, request_checksum_calculation,
// response_checksum_validation. Credentials come from the standard AWS
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...).
// Example for a local versitygw:
//
//	s3://bucket?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true
//
// # Versions and ETags
//
// An object version is identified by key plus ETag (see event.Record.Version).
// For S3 the ETag is the server's, without quotes (event.NormalizeETag). For
// file:// and mem:// it is the hex MD5 of the content, so equal bytes are the
// same version on both, and different bytes are a different version whatever
// their size and modification time.
//
// # Local stores (file://)
//
// Confinement. Every open, create, rename, remove and stat goes through an
// os.Root on the store directory. A symbolic link inside the directory that
// resolves inside it is followed; one that leads outside (or a ".." a link
// introduces) is an error on reading and on writing, naming the key, and the
// watcher reports such links as ignored files. So `sluice put` through a
// symlinked directory cannot write outside the lake, and a link to
// /etc/passwd in the lake is never loaded.
//
// ETags. The MD5 is computed while sluice writes a file, and by reading the
// file when another program wrote it; either way it is remembered (in
// memory) by the file's identity — device, inode, size, mtime and ctime.
// Programs cannot set ctime, and every write, truncation, rename or chmod
// advances it, so a remembered MD5 is never lent to new content, not even by
// `cp -p`, which restores size and mtime. Nothing is persisted next to the
// files: after a restart an ETag is recomputed on first use, and the
// watcher's seen-set (which stores identity and ETag) keeps restarts from
// rehashing unchanged files. The content type of a sluice-written file is
// remembered likewise; after a restart it is guessed from the extension.
//
// Atomic writes. Readers never see partial objects. A write goes to a
// temporary file in the target's directory (so the rename cannot cross file
// systems), is fsynced, renamed into place, and the directory is fsynced.
// Temporary files are named ".sluice\" + 16 hex digits + ".tmp": the
// backslash makes it a name no valid key has, so the sweeper (SweepTemp,
// which the owning process runs when it starts) — deleting such files older
// than StaleTempAge — can never
// delete a user's file (an "export.0123456789abcdef.tmp" is an ordinary
// object). Younger ones may belong to a write in progress in another process
// and are left alone. (On Windows a backslash separates path elements, so
// file:// stores are supported on Unix-like systems only.)
//
// Files that cannot be objects — names ValidateKey rejects (backslashes,
// control characters, paths over MaxKeyLen bytes), symbolic links leading
// outside the store or to directories, sockets and other non-regular files —
// are never skipped silently: Ignored lists them with the reason, the
// watcher logs each once as a warning, and ScanOnce returns them.
//
// Legacy sidecars. Versions of sluice built on gocloud's fileblob kept the
// MD5 in a "NAME.attrs" JSON sidecar next to each file. Those sidecars are
// no longer read, but a file whose name ends in ".attrs", whose content is
// exactly such a JSON document, and which sits next to its file is hidden,
// so an old data directory does not announce its metadata as data; Delete
// removes it with its file, and an orphaned one is reported as ignored. Any
// other ".attrs" file is an ordinary object.
//
// # Watching
//
// Watch and ScanOnce turn files that other programs put into a store into
// events (see SeenSet). The cheap change detector is the Fingerprint — in a
// file:// store the file identity, so a `cp -p` replacement or a rename over
// the file is noticed.
//
// Finding changes. On Linux, Watch follows a file:// store with inotify
// (github.com/fsnotify/fsnotify): a watch on every directory, added for
// each new directory as it appears (and the directory listed right after,
// so files made before its watch are not missed), and dropped for a
// directory moved away. Every path the kernel reports is looked at when it
// is reported. When the kernel's event queue overflows
// (fs.inotify.max_queued_events) events were lost, so the whole store is
// listed again; it is also listed every WatchOptions.Rescan (default one
// minute) as a safety net for changes inotify cannot see, such as other
// hosts' writes to a network file system. Where inotify cannot be used — no
// inotify instance, more directories than fs.inotify.max_user_watches
// allows (Watch logs a warning), other systems (fsnotify's kqueue backend
// needs a descriptor per file), mem:// and s3:// stores, or
// WatchOptions.Poll — Watch lists the store every WatchOptions.Interval
// (default one second) instead. S3 buckets should use bucket notifications.
//
// Completeness. A file is announced only once it is complete. A file is
// complete when no process holds it open for writing: it was renamed into
// place, or its last writer closed it. On Linux the watcher asks the kernel
// for a read lease on a read-only descriptor (fcntl F_SETLEASE, F_RDLCK),
// which it refuses with EAGAIN while any process holds the file open for
// writing; a granted lease is released at once (a process opening the file
// for writing in the microseconds it is held waits until then). So by
// default (WatchOptions.Settle zero) a file moved into a file:// store, or
// closed by its writer, is announced the moment the watcher looks at it —
// with inotify, when the kernel reports it, within milliseconds, with no
// settle window. A file still open for writing is looked at again 5ms later,
// the wait doubling at each look that finds it still open, up to
// WatchOptions.Interval, and starting over at each change inotify reports:
// inotify reports the writes (IN_MODIFY) but fsnotify, the library used,
// does not report the close (IN_CLOSE_WRITE), so the close is noticed at the
// next look — 5ms after the last write for a writer that closes the file
// right after it. The file stays unannounced however long its writer pauses.
//
// Where the kernel cannot tell — the lease is only granted to the file's
// owner (or with CAP_LEASE) and on file systems that have leases, so
// EACCES, EPERM or EINVAL mean nothing is known (another user's files, NFS,
// FUSE) — on systems other than Linux, and for mem:// and s3:// stores, a
// file is complete once its fingerprint has held for the settle window,
// DefaultSettle (two seconds): counted from its modification time when the
// watcher first sees it (or from now, if that lies ahead), and from the
// moment the watcher sees the fingerprint change after that. So a file that
// was already unchanged for the window when the watcher started (one that
// arrived while sluice was down) is announced by the first listing, at once,
// and a file that is being written is announced when its window ends: Watch
// waits exactly until the earliest settle deadline, not for the next poll.
// Writers there that pause longer than the window mid-file need a longer
// WatchOptions.Settle. Programs that set an old modification time (cp -p,
// tar, rsync) do so after writing the content; cp -p and tar do it on the
// file they wrote, which the watcher has then seen change, so it waits the
// window.
//
// A WatchOptions.Settle above zero (the spec's watch.settle) is a window
// every object must wait out, everywhere, in addition to the writer check.
// It is for programs that write one file in several opens (repeated `>>`
// appends, a logger reopening its file): each close makes the file
// complete, so without a window each of its versions is announced (and
// loaded) in turn. Such programs can instead write under a temporary name
// and rename the file into place when it is done; a rename is the one way to
// make a file appear complete on every system.
//
// Once complete the ETag is computed, and the object is announced only if
// that ETag differs from the one last announced for the key (a `touch` or a
// chmod is not a new version).
//
// sluice's own writes do not wait for the watcher: whoever writes publishes
// the event at once and marks the version seen, and the watcher then skips
// it. So that the mark comes first, a version sluice wrote waits
// DefaultSettle in the watcher even by default (if it is still unmarked
// then — publishing failed — the watcher announces it). The watcher knows
// such a version in two ways: this Store wrote it (Write and Put remember
// the file identity of what they wrote, with the ETag cache), or, with
// inotify, it appeared by the rename of a sluice temporary file, which is
// how every process writes through a Store (`sluice put` too): inotify
// reports the rename's two names as consecutive events, as a rule. A
// version that escapes both — another process's write found by a listing
// (polling, a rescan, a directory moved in such as a curated output's
// commit) — is announced at once, possibly before its writer marked it: a
// second event for the same version (ETag), which loads and jobs
// deduplicate.
//
// # Keys
//
// Keys are "/"-separated paths: not empty, at most 1024 bytes of valid UTF-8,
// no leading or trailing "/", no empty, "." or ".." segments, no backslash and
// no control characters (see ValidateKey). In a file:// store a key cannot be
// both an object and a "directory" of other keys ("a" and "a/b").
//
// # Concurrency
//
// A Store is safe for concurrent use. One process owns a file:// directory
// and writes to it; other processes may read it at the same time.
package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/sluicehq/sluice/event"
)

// ErrRewritten is returned by an open of an object that was replaced
// again and again while being opened: no consistent version could be
// read. Nothing partial was read; try again later.
var ErrRewritten = errors.New("object changed while being opened; it is being rewritten continuously, try again later")

// ErrNotFound is returned (wrapped) for a key that does not exist.
var ErrNotFound = errors.New("object not found")

// ErrInvalidKey is returned (wrapped) for a key or prefix that ValidateKey rejects.
var ErrInvalidKey = errors.New("invalid object key")

// StaleTempAge is how old a temporary file in a file:// store must be before
// SweepTemp deletes it as a leftover of a crashed write.
const StaleTempAge = time.Hour

// MaxKeyLen is the longest key accepted, in bytes (the S3 limit).
const MaxKeyLen = 1024

// Object describes one object version.
type Object struct {
	Key  string
	Size int64
	// ETag identifies the content: the hex MD5 for file:// and mem://, the
	// server's unquoted ETag for S3. List leaves it empty; Stat, Open,
	// ReadAll, Put and Write always fill it.
	ETag    string
	ModTime time.Time
	// ContentType is as written; for files written by other programs it is
	// guessed from the extension. List leaves it empty.
	ContentType string

	fp   string // file:// only: the file identity (see Fingerprint)
	link bool   // file:// only: the key is a symbolic link
}

// Options configure Open. A nil *Options means defaults.
type Options struct {
	// Clock returns the current time (default time.Now). It decides which
	// temporary files are stale.
	Clock func() time.Time
	// Logger reports housekeeping, such as deleted stale temporary files
	// (default slog.Default()).
	Logger *slog.Logger
}

// Store is an object store opened by URL. See the package documentation.
type Store struct {
	b      *blob.Bucket // mem:// and s3://
	url    string       // redacted
	bucket string
	s3     bool
	clock  func() time.Time
	log    *slog.Logger

	// file:// only
	root     *os.Root
	dir      string // absolute directory
	etags    *etagCache
	sidecars *sync.Map                           // fileID → bool: is it a legacy fileblob sidecar
	writers  func(f *os.File) (open, known bool) // writerOpen; tests replace it
}

// Open opens the store at rawURL. For file:// the directory is created if it
// is missing; Open does not read it, so opening a large lake is cheap (the
// owning process sweeps stale temporary files with SweepTemp). Opening an
// s3:// store does not contact the server.
func Open(ctx context.Context, rawURL string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("store: %q is not a URL (write file:///abs/dir, mem:// or s3://bucket?region=...): %v", redactRaw(rawURL), err)
	}
	s := &Store{url: redact(rawURL, u), clock: o.Clock, log: o.Logger}
	switch u.Scheme {
	case "file":
		if err := s.openFile(u); err != nil {
			return nil, err
		}
	case "mem":
		if len(u.Query()) > 0 || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("store %s: mem:// takes no path or query parameters (write mem:// or mem://NAME)", s.url)
		}
		s.b = memblob.OpenBucket(nil)
		s.bucket = u.Host
		if s.bucket == "" {
			s.bucket = "mem"
		}
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("store %s: s3 URL has no bucket name (write s3://BUCKET?region=...)", s.url)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("store %s: s3 URL has a path %q; a store is a whole bucket (write s3://%s?...)", s.url, u.Path, u.Host)
		}
		b, err := (&s3blob.URLOpener{}).OpenBucketURL(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("store %s: open: %v", s.url, err)
		}
		s.b, s.bucket, s.s3 = b, u.Host, true
	default:
		return nil, fmt.Errorf("store %s: unsupported scheme %q (write file:///abs/dir, mem:// or s3://bucket?region=...)", s.url, u.Scheme)
	}
	return s, nil
}

func (s *Store) openFile(u *url.URL) error {
	if u.Host != "" && u.Host != "localhost" {
		return fmt.Errorf("store %s: file URL has host %q; write an absolute path as file:///abs/dir", s.url, u.Host)
	}
	if u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
		return fmt.Errorf("store %s: file URL needs an absolute path, like file:///abs/dir", s.url)
	}
	if len(u.Query()) > 0 {
		return fmt.Errorf("store %s: a file:// store takes no query parameters (its files get the umask's mode: sluice's is 077; to share the store with a group, give its directory a default ACL, like setfacl -d -m g:NAME:rX DIR)", s.url)
	}
	dir := filepath.Clean(filepath.FromSlash(u.Path))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store %s: create directory %s: %v", s.url, dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("store %s: open directory %s: %v", s.url, dir, err)
	}
	s.root, s.dir, s.etags, s.sidecars, s.writers = root, dir, newETagCache(), &sync.Map{}, writerOpen
	s.bucket = filepath.Base(dir)
	return nil
}

// URL returns the URL the store was opened with, secrets redacted.
func (s *Store) URL() string { return s.url }

// Bucket returns the bucket name used in events: the S3 bucket, the base name
// of the directory for file://, and "mem" (or the host given) for mem://.
func (s *Store) Bucket() string { return s.bucket }

// LocalDir returns the absolute directory of a file:// store, "" otherwise.
func (s *Store) LocalDir() string { return s.dir }

// Close releases the store's resources.
func (s *Store) Close() error {
	var err error
	if s.root != nil {
		err = s.root.Close()
	} else {
		err = s.b.Close()
	}
	if err != nil {
		return fmt.Errorf("store %s: close: %v", s.url, err)
	}
	return nil
}

// Put writes data as key, replacing any existing object, and returns the new
// version. An empty contentType is detected from the first 512 bytes.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) (Object, error) {
	return s.Write(ctx, key, bytes.NewReader(data), contentType)
}

// Write streams r into key and returns the new version once the object is
// complete and visible. If r fails or ctx is cancelled, nothing is written
// and any previous object at key is untouched.
func (s *Store) Write(ctx context.Context, key string, r io.Reader, contentType string) (Object, error) {
	if err := s.checkKey(key); err != nil {
		return Object{}, s.errorf("write", key, err)
	}
	if s.root != nil {
		return s.writeLocal(ctx, key, r, contentType)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(wctx, key, &blob.WriterOptions{ContentType: contentType})
	if err != nil {
		return Object{}, s.errorf("write", key, err)
	}
	h := md5.New()
	src := &recordingReader{r: r}
	n, err := io.Copy(io.MultiWriter(w, h), src)
	if err != nil {
		cancel() // a cancelled writer discards the data on Close
		_ = w.Close()
		if err == src.err { // the caller's reader failed: keep its error for errors.Is
			return Object{}, fmt.Errorf("store %s: write %q: reading the input after %d bytes: %w", s.url, key, n, err)
		}
		return Object{}, s.errorf("write", key, fmt.Errorf("after %d bytes: %w", n, err))
	}
	if err := w.Close(); err != nil {
		return Object{}, s.errorf("write", key, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	o, err := s.Stat(ctx, key)
	if err != nil {
		return Object{}, err
	}
	if !s.s3 && (o.ETag != sum || o.Size != n) { // mem://: another Write replaced it
		return Object{}, s.errorf("write", key, fmt.Errorf("object was replaced by another writer while being written (wrote %d bytes with MD5 %s, found %d bytes with MD5 %s)", n, sum, o.Size, o.ETag))
	}
	return o, nil
}

// Stat returns the object's current version, with ETag and ContentType.
func (s *Store) Stat(ctx context.Context, key string) (Object, error) {
	if err := s.checkKey(key); err != nil {
		return Object{}, s.errorf("stat", key, err)
	}
	if s.root != nil {
		f, o, err := s.openLocal(ctx, key)
		if err != nil {
			return Object{}, s.errorf("stat", key, err)
		}
		_ = f.Close()
		return o, nil
	}
	a, err := s.b.Attributes(ctx, key)
	if err != nil {
		return Object{}, s.errorf("stat", key, err)
	}
	return s.fromAttrs(key, a), nil
}

func (s *Store) fromAttrs(key string, a *blob.Attributes) Object {
	o := Object{Key: key, Size: a.Size, ModTime: a.ModTime, ContentType: a.ContentType}
	if s.s3 {
		o.ETag = event.NormalizeETag(a.ETag)
	} else {
		o.ETag = hex.EncodeToString(a.MD5)
	}
	return o
}

// Open opens key for reading; the caller must close the reader. The returned
// Object describes exactly the version being read.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	if err := s.checkKey(key); err != nil {
		return nil, Object{}, s.errorf("open", key, err)
	}
	if s.root != nil {
		f, o, err := s.openLocal(ctx, key)
		if err != nil {
			return nil, Object{}, s.errorf("open", key, err)
		}
		return f, o, nil
	}
	// Stat, open, and check that the reader is the version stat described;
	// retry if the object was replaced in between.
	for attempt := range 5 {
		if attempt > 0 {
			// Give a writer replacing it a moment to finish.
			select {
			case <-ctx.Done():
				return nil, Object{}, s.errorf("open", key, ctx.Err())
			case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
			}
		}
		a, err := s.b.Attributes(ctx, key)
		if err != nil {
			return nil, Object{}, s.errorf("open", key, err)
		}
		o := s.fromAttrs(key, a)
		r, err := s.b.NewReader(ctx, key, nil)
		if err != nil {
			return nil, Object{}, s.errorf("open", key, err)
		}
		if r.Size() == o.Size && r.ModTime().Equal(o.ModTime) {
			return r, o, nil
		}
		_ = r.Close()
	}
	return nil, Object{}, s.errorf("open", key, ErrRewritten)
}

// ReadAll reads the whole object.
func (s *Store) ReadAll(ctx context.Context, key string) ([]byte, Object, error) {
	r, o, err := s.Open(ctx, key)
	if err != nil {
		return nil, Object{}, err
	}
	defer r.Close()
	buf := bytes.NewBuffer(make([]byte, 0, o.Size))
	if _, err := io.Copy(buf, ctxReader{ctx, r}); err != nil {
		return nil, Object{}, s.errorf("read", key, err)
	}
	if int64(buf.Len()) != o.Size {
		return nil, Object{}, s.errorf("read", key, fmt.Errorf("read %d bytes, expected %d", buf.Len(), o.Size))
	}
	return buf.Bytes(), o, nil
}

// List returns every object whose key starts with prefix, recursively, sorted
// by key. It fills Key, Size and ModTime; ETag and ContentType are left empty
// (call Stat for them). In a file:// store, List is a directory walk.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	if prefix != "" {
		if err := ValidateKey(prefix + "x"); err != nil {
			return nil, fmt.Errorf("store %s: list prefix %q: %w", s.url, prefix, err)
		}
	}
	if s.root != nil {
		objs, _, err := s.listLocal(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("store %s: list prefix %q: %w", s.url, prefix, err)
		}
		return objs, nil
	}
	var objs []Object
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		lo, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("store %s: list prefix %q: %v", s.url, prefix, convert(err))
		}
		if lo.IsDir {
			continue
		}
		objs = append(objs, Object{Key: lo.Key, Size: lo.Size, ModTime: lo.ModTime})
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs, nil
}

// Walk calls fn for every object whose key starts with prefix, recursively,
// as List finds them but without collecting them: memory does not grow
// with the number of objects (S3 and mem:// list a page of 1,000 keys at
// a time; file:// walks the directory tree). Objects come in key order on
// s3:// and mem://, in directory-walk order on file://. Key, Size and
// ModTime are filled; ETag too where the listing carries it (mem://, and
// S3's listing ETag — the same the server returns on HEAD), else it is
// empty (file://: call Stat, which computes and caches it). fn's error
// stops the walk and is returned as is.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	if prefix != "" {
		if err := ValidateKey(prefix + "x"); err != nil {
			return fmt.Errorf("store %s: list prefix %q: %w", s.url, prefix, err)
		}
	}
	var fnErr error
	call := func(o Object) error {
		if err := fn(o); err != nil {
			fnErr = err
			return err
		}
		return nil
	}
	if s.root != nil {
		_, err := s.walkLocal(ctx, prefix, call)
		if err != nil && fnErr == nil {
			return fmt.Errorf("store %s: list prefix %q: %w", s.url, prefix, err)
		}
		return err
	}
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		lo, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store %s: list prefix %q: %v", s.url, prefix, convert(err))
		}
		if lo.IsDir {
			continue
		}
		o := Object{Key: lo.Key, Size: lo.Size, ModTime: lo.ModTime}
		var so s3types.Object
		switch {
		case s.s3 && lo.As(&so) && so.ETag != nil:
			o.ETag = event.NormalizeETag(*so.ETag)
		case !s.s3 && lo.MD5 != nil:
			o.ETag = hex.EncodeToString(lo.MD5)
		}
		if err := call(o); err != nil {
			return err
		}
	}
}

// Delete removes key. Deleting a missing key returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.checkKey(key); err != nil {
		return s.errorf("delete", key, err)
	}
	if s.root != nil {
		if err := s.deleteLocal(key); err != nil {
			return s.errorf("delete", key, err)
		}
		return nil
	}
	if err := s.b.Delete(ctx, key); err != nil {
		return s.errorf("delete", key, err)
	}
	return nil
}

// checkKey validates key for this store. Every backend accepts the same keys.
func (s *Store) checkKey(key string) error { return ValidateKey(key) }

// ValidateKey reports whether key is acceptable on every backend; the error
// wraps ErrInvalidKey and says what is wrong.
func ValidateKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty key")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case key[0] == '/':
		return bad("starts with \"/\" (keys are relative, like data/2020-08-07/file.csv)")
	case strings.HasSuffix(key, "/"):
		return bad("ends with \"/\" (that names a prefix, not an object)")
	case strings.ContainsRune(key, '\\'):
		return bad("contains a backslash (separate segments with \"/\")")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("contains an empty segment (\"//\")")
		case ".", "..":
			return bad(fmt.Sprintf("contains a %q segment", seg))
		}
	}
	return nil
}

// errorf wraps err from operation op on key, naming the store and the key,
// mapping backend errors to ErrNotFound and context errors.
func (s *Store) errorf(op, key string, err error) error {
	return fmt.Errorf("store %s: %s %q: %w", s.url, op, key, convert(err))
}

// convert maps a backend error to a portable one: ErrNotFound, ErrInvalidKey,
// ErrRewritten and context errors are kept for errors.Is; other backend errors are
// flattened to text so SDK types do not leak.
func convert(err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalidKey), errors.Is(err, ErrRewritten),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return ErrNotFound
	case gcerrors.Canceled:
		return fmt.Errorf("%v: %w", err, context.Canceled)
	case gcerrors.DeadlineExceeded:
		return fmt.Errorf("%v: %w", err, context.DeadlineExceeded)
	}
	return errors.New(err.Error())
}

// redact returns the URL raw (parsed as u) without passwords or
// secret-looking query values.
func redact(raw string, u *url.URL) string {
	c := *u
	q := c.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		for _, w := range []string{"secret", "password", "token", "credential"} {
			if strings.Contains(lk, w) && !strings.HasSuffix(lk, "_path") {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	if _, hasPW := u.User.Password(); !changed && !hasPW {
		return redactRaw(raw)
	}
	return redactRaw(c.Redacted())
}

// redactRaw hides userinfo ("//user:password@") in a URL string that may not
// parse.
func redactRaw(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	j := strings.LastIndex(raw[:at], "//")
	if j < 0 || strings.ContainsAny(raw[j+2:at], "/?") {
		return raw
	}
	return raw[:j+2] + "xxxxx" + raw[at:]
}

// recordingReader remembers the error its reader returned.
type recordingReader struct {
	r   io.Reader
	err error
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF {
		rr.err = err
	}
	return n, err
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// hashReader hashes r with MD5, stopping when ctx is done.
func hashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := md5.New()
	n, err := io.Copy(h, ctxReader{ctx, r})
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

package httpsource

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spoolMemory is how much of a page body a spool keeps in memory before it
// moves to a temporary file. Most API pages are smaller.
const spoolMemory = 1 << 20

// spool holds one page body between its download and its landing: in memory
// up to spoolMemory bytes, then in a temporary file in dir. Close removes the
// file.
type spool struct {
	dir string
	mem []byte
	f   *os.File
	n   int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && len(s.mem)+len(p) <= spoolMemory {
		if s.mem == nil {
			s.mem = make([]byte, 0, min(spoolMemory, max(len(p), 64<<10)))
		}
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "sluice-httpsource-*.spool")
		if err != nil {
			return 0, fmt.Errorf("spooling the body to a temporary file: %w", err)
		}
		// Unlinked at once where the system allows it (a crash leaves
		// nothing behind); Close removes it otherwise.
		_ = os.Remove(f.Name())
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, fmt.Errorf("spooling the body to %s: %w", f.Name(), err)
		}
		s.mem = nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("spooling the body to %s: %w", s.f.Name(), err)
	}
	return n, nil
}

// reader returns the spooled bytes from the start.
func (s *spool) reader() io.Reader {
	if s.f == nil {
		return bytes.NewReader(s.mem)
	}
	return io.NewSectionReader(s.f, 0, s.n)
}

// Close releases the spool. It may be called more than once.
func (s *spool) Close() error {
	s.mem = nil
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	err := f.Close()
	if rerr := os.Remove(f.Name()); rerr != nil && !os.IsNotExist(rerr) && err == nil {
		err = rerr
	}
	return err
}

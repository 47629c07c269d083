package store

import "os"

// SetWriterProbe replaces how s tells whether a file is open for writing
// (writerOpen on Linux), so that tests can take the path of a kernel that
// cannot tell. Call it before Watch or ScanOnce.
func SetWriterProbe(s *Store, probe func(f *os.File) (open, known bool)) { s.writers = probe }

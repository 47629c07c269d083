package format

import (
	"fmt"
	"io"
)

// Defaults of Limits; a zero field of Limits means its default.
const (
	// DefaultMaxObjectBytes bounds the decompressed bytes of one object:
	// it admits a 1 GB object and stops a 10 GB decompression bomb early.
	DefaultMaxObjectBytes int64 = 4 << 30
	// DefaultMaxRecordBytes bounds one record (a JSON object as written,
	// a CSV row).
	DefaultMaxRecordBytes int64 = 16 << 20
	// DefaultMaxFieldBytes bounds one value: a JSON string (as written,
	// quotes and escapes included), the raw text of a nested JSON object
	// or array, a CSV field.
	DefaultMaxFieldBytes int64 = 16 << 20
	// DefaultMaxRecords bounds the records of one object.
	DefaultMaxRecords int64 = 100_000_000
)

// Spec keys that raise each limit; LimitError names them.
const (
	KeyMaxObjectBytes = "limits.max_object_bytes"
	KeyMaxRecordBytes = "limits.max_record_bytes"
	KeyMaxFieldBytes  = "limits.max_field_bytes"
	KeyMaxRecords     = "limits.max_records"
)

// Limits bound what one object may make a decoder hold or read. They are
// checked while streaming, before the data is held in memory: a decoder
// never buffers much more than MaxRecordBytes (plus a read buffer) for
// one record, whatever the input holds. The zero value means every
// default; a negative field is an error of the decoder.
type Limits struct {
	// MaxObjectBytes bounds the decompressed bytes of the object
	// (DefaultMaxObjectBytes).
	MaxObjectBytes int64
	// MaxRecordBytes bounds one record (DefaultMaxRecordBytes).
	MaxRecordBytes int64
	// MaxFieldBytes bounds one value (DefaultMaxFieldBytes).
	MaxFieldBytes int64
	// MaxRecords bounds the records of the object (DefaultMaxRecords).
	MaxRecords int64
}

// Validate reports a negative limit, naming its spec key; spec checks can
// call it so that a bad limit fails at load time, not per object.
func (l Limits) Validate() error {
	_, err := l.withDefaults()
	return err
}

// withDefaults fills in zero fields; l may be nil.
func (l *Limits) withDefaults() (Limits, error) {
	var r Limits
	if l != nil {
		r = *l
	}
	for _, f := range []struct {
		v   *int64
		def int64
		key string
	}{
		{&r.MaxObjectBytes, DefaultMaxObjectBytes, KeyMaxObjectBytes},
		{&r.MaxRecordBytes, DefaultMaxRecordBytes, KeyMaxRecordBytes},
		{&r.MaxFieldBytes, DefaultMaxFieldBytes, KeyMaxFieldBytes},
		{&r.MaxRecords, DefaultMaxRecords, KeyMaxRecords},
	} {
		switch {
		case *f.v < 0:
			return r, fmt.Errorf("format: %s is %d; want a positive number, or 0 for the default %d", f.key, *f.v, f.def)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	return r, nil
}

// LimitError says that an object broke one of its Limits. Decoders return
// it as the Err of a *RecordError that locates it (record, line, column
// when known), so errors.As finds either; like every *RecordError it is
// permanent: retrying the same object fails the same way.
type LimitError struct {
	// Key is the spec key of the limit, e.g. "limits.max_record_bytes".
	Key string
	// Limit is the value in force.
	Limit int64
}

// Error implements error.
func (e *LimitError) Error() string {
	switch e.Key {
	case KeyMaxObjectBytes:
		return fmt.Sprintf("the decompressed object is larger than %s = %s; raise %s in the spec if the object is genuine (a small compressed object that expands this far is a decompression bomb)",
			e.Key, sizeText(e.Limit), e.Key)
	case KeyMaxRecordBytes:
		return fmt.Sprintf("the record is larger than %s = %s; raise %s in the spec to accept it", e.Key, sizeText(e.Limit), e.Key)
	case KeyMaxFieldBytes:
		return fmt.Sprintf("the value is larger than %s = %s; raise %s in the spec to accept it", e.Key, sizeText(e.Limit), e.Key)
	case KeyMaxRecords:
		return fmt.Sprintf("the object has more than %s = %d records; raise %s in the spec or split the object", e.Key, e.Limit, e.Key)
	}
	return fmt.Sprintf("over the limit %s = %d; raise it in the spec", e.Key, e.Limit)
}

// sizeText writes n bytes exactly, with binary units when round.
func sizeText(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d bytes (%d %s)", n, n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// objectLimitReader returns at most max bytes of r and then, if r has
// more, a *LimitError for KeyMaxObjectBytes (on every later call too).
type objectLimitReader struct {
	r   io.Reader
	n   int64 // bytes returned so far
	max int64
	err error
}

func (l *objectLimitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.n >= l.max {
		// At the limit: the object is over it only if one more byte
		// exists.
		var one [1]byte
		for {
			n, err := l.r.Read(one[:])
			if n > 0 {
				l.err = &LimitError{Key: KeyMaxObjectBytes, Limit: l.max}
				return 0, l.err
			}
			if err != nil {
				l.err = err
				return 0, err
			}
		}
	}
	if rem := l.max - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}

package httpsource

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// shape is what the stop rules need to know about a page body.
type shape struct {
	empty   bool // no records: blank, [], {}, or an empty/null/absent ItemsPath
	items   int  // number of records, when counted
	counted bool // items is known
}

// pageInfo is what one pass over a page body learns for the pagination.
type pageInfo struct {
	shape    shape
	shapeErr error // the body cannot be classified: the page fails before landing

	cursor    string // next cursor, when cursorOK
	cursorOK  bool
	cursorErr error // the cursor cannot be read: the page fails after landing
}

// Limits of the body scanner. They bound its memory whatever the body's size:
// only object keys on the way to a path and the cursor itself are kept.
const (
	maxCursorLen  = 64 << 10 // longest cursor value, in bytes
	maxJSONKeyLen = 4 << 10  // longer object keys never match a path segment
	maxDepth      = 10000    // deepest nesting, as encoding/json
	scanBuffer    = 32 << 10 // read buffer
)

// scanPage reads one JSON body from r, without holding it, and classifies it
// for the stop rules: the number of records (a top-level array, or the array
// at itemsPath when the body is an object) and, when cursorPath is not "",
// the next cursor. It consumes r up to the end of the top-level value and the
// white space after it, or up to the first syntax error; the caller drains
// the rest. A read error of r is returned as it is, wrapped; JSON errors are
// reported in pageInfo, naming the byte offset.
//
// The rules are those of a decoded document: a repeated object key counts
// by its last occurrence, a null on the way to a path means the path is
// absent, and a numeric segment indexes an array.
func scanPage(r io.Reader, itemsPath, cursorPath string) (pageInfo, error) {
	s := &scanner{r: bufio.NewReaderSize(r, scanBuffer)}
	var items, cursor *target
	if itemsPath != "" {
		items = newTarget(itemsPath, false)
		s.targets = append(s.targets, items)
	}
	if cursorPath != "" {
		cursor = newTarget(cursorPath, true)
		s.targets = append(s.targets, cursor)
	}

	c, err := s.skipSpace()
	if err == io.EOF {
		info := pageInfo{shape: shape{empty: true, counted: true}}
		if cursor != nil {
			info.cursorErr = errors.New("body is not JSON: it is empty")
		}
		return info, nil
	}
	if err != nil {
		return pageInfo{}, err.(*readError).err
	}
	first := c
	var top topValue
	active := make([]int, len(s.targets))
	for i := range active {
		active[i] = i
	}
	serr := s.value(c, 0, active, &top)
	if serr == nil {
		if c, err := s.skipSpace(); err == nil {
			serr = s.syntax("data after the top-level value (%s)", quoteByte(c))
		} else if err != io.EOF {
			serr = err
		}
	}
	var re *readError
	if errors.As(serr, &re) {
		return pageInfo{}, re.err
	}

	var info pageInfo
	switch {
	case first == '[' && serr != nil:
		info.shapeErr = fmt.Errorf("body looks like a JSON array but does not parse: %v", serr)
	case first == '[':
		info.shape = shape{empty: top.members == 0, items: top.members, counted: true}
	case first == '{' && serr != nil:
		info.shapeErr = fmt.Errorf("body looks like a JSON object but does not parse: %v", serr)
	case first == '{' && items == nil:
		info.shape = shape{empty: top.members == 0}
	case first == '{':
		switch {
		case items.err != nil:
			info.shapeErr = fmt.Errorf("items path %q: %v", itemsPath, items.err)
		case !items.found || items.kind == "null":
			info.shape = shape{empty: true, counted: true}
		case items.kind != "an array":
			info.shapeErr = fmt.Errorf("items path %q holds %s, not an array", itemsPath, items.kind)
		default:
			info.shape = shape{empty: items.count == 0, items: items.count, counted: true}
		}
	}
	// Other bodies (a JSON scalar, CSV, ...) are not empty; their number of
	// records is unknown.

	if cursor != nil {
		switch {
		case serr != nil:
			info.cursorErr = fmt.Errorf("body is not JSON: %v", serr)
		case cursor.err != nil:
			info.cursorErr = cursor.err
		case !cursor.found || cursor.kind == "null":
		case cursor.kind == "a string" || cursor.kind == "a number":
			if cursor.tooLong {
				info.cursorErr = fmt.Errorf("%q holds a cursor longer than %d bytes", cursorPath, maxCursorLen)
			} else {
				info.cursor, info.cursorOK = cursor.text, cursor.text != ""
			}
		default:
			info.cursorErr = fmt.Errorf("%q holds %s; a cursor must be a string or number", cursorPath, cursor.kind)
		}
	}
	return info, nil
}

// target is a dotted path the scanner watches, and what it found there at
// the last occurrence.
type target struct {
	segs    []string
	index   []int // segs[i] as an array index, -1 if it is not one
	capture bool  // keep the text of a string or number value

	found   bool
	kind    string // "null", "an object", "an array", "a string", "a number", "a boolean"
	count   int    // members of an array
	text    string // the string's value or the number's text, when capture
	tooLong bool   // text was longer than maxCursorLen
	err     error  // the path runs into a scalar
}

func newTarget(path string, capture bool) *target {
	t := &target{segs: strings.Split(path, "."), capture: capture}
	for _, seg := range t.segs {
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 {
			i = -1
		}
		t.index = append(t.index, i)
	}
	return t
}

// reset forgets what an earlier occurrence of the path, or of one of its
// ancestors, found: the last occurrence of an object key wins.
func (t *target) reset() {
	t.found, t.kind, t.count, t.text, t.tooLong, t.err = false, "", 0, "", false, nil
}

// topValue counts the members of the top-level array or object.
type topValue struct{ members int }

// scanner is a validating JSON reader that keeps only what its targets need.
type scanner struct {
	r       *bufio.Reader
	off     int64 // bytes consumed
	targets []*target
	key     []byte // scratch for object keys
}

// readError carries a read error of the underlying reader through the scan.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

func (s *scanner) syntax(format string, args ...any) error {
	return fmt.Errorf(format+" at byte %d", append(args, s.off)...)
}

// next returns the next byte; io.EOF at the end of the body.
func (s *scanner) next() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, &readError{err}
	}
	s.off++
	return c, nil
}

// must returns the next byte, failing at the end of the body.
func (s *scanner) must() (byte, error) {
	c, err := s.next()
	if err == io.EOF {
		return 0, s.syntax("unexpected end of the body")
	}
	return c, err
}

// skipSpace returns the next byte that is not JSON white space.
func (s *scanner) skipSpace() (byte, error) {
	for {
		c, err := s.next()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

func (s *scanner) mustSkipSpace() (byte, error) {
	c, err := s.skipSpace()
	if err == io.EOF {
		return 0, s.syntax("unexpected end of the body")
	}
	return c, err
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// value reads one value whose first byte is c, at the given depth. active
// lists the targets whose first depth segments lead here.
func (s *scanner) value(c byte, depth int, active []int, top *topValue) error {
	if depth > maxDepth {
		return s.syntax("nesting deeper than %d levels", maxDepth)
	}
	kind := kindOf(c)
	var here, below []int // targets found at this value, and passing through it
	for _, i := range active {
		t := s.targets[i]
		t.reset()
		if depth == len(t.segs) {
			t.found, t.kind = true, kind
			here = append(here, i)
			continue
		}
		switch c {
		case '{', '[':
			below = append(below, i)
		case 'n': // a null on the way: absent
		default:
			where := "the body"
			if depth > 0 {
				where = strconv.Quote(strings.Join(t.segs[:depth], "."))
			}
			t.err = fmt.Errorf("%s is %s, so it has no %q", where, kind, t.segs[depth])
		}
	}

	switch c {
	case '{':
		return s.object(depth, below, top)
	case '[':
		return s.array(depth, here, below, top)
	case '"':
		var capture *target
		for _, i := range here {
			if s.targets[i].capture {
				capture = s.targets[i]
			}
		}
		if capture == nil {
			_, _, err := s.str(0)
			return err
		}
		b, complete, err := s.str(maxCursorLen)
		capture.text, capture.tooLong = string(b), !complete
		return err
	case 't':
		return s.literal("rue")
	case 'f':
		return s.literal("alse")
	case 'n':
		return s.literal("ull")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		text, cut, err := s.number(c)
		for _, i := range here {
			if t := s.targets[i]; t.capture {
				t.text, t.tooLong = text, cut
			}
		}
		return err
	}
	return s.syntax("invalid character %s looking for the beginning of a value", quoteByte(c))
}

func (s *scanner) literal(rest string) error {
	for i := 0; i < len(rest); i++ {
		c, err := s.must()
		if err != nil {
			return err
		}
		if c != rest[i] {
			return s.syntax("invalid character %s in a literal", quoteByte(c))
		}
	}
	return nil
}

// object reads the members of an object after its '{'.
func (s *scanner) object(depth int, below []int, top *topValue) error {
	c, err := s.mustSkipSpace()
	if err != nil {
		return err
	}
	if c == '}' {
		return nil
	}
	for {
		if c != '"' {
			return s.syntax("invalid character %s looking for the beginning of an object key", quoteByte(c))
		}
		keep := 0
		if len(below) > 0 {
			keep = maxJSONKeyLen
		}
		key, complete, err := s.str(keep)
		if err != nil {
			return err
		}
		var next []int
		if complete {
			for _, i := range below {
				if t := s.targets[i]; string(key) == t.segs[depth] {
					next = append(next, i)
				}
			}
		}
		if c, err = s.mustSkipSpace(); err != nil {
			return err
		}
		if c != ':' {
			return s.syntax("invalid character %s after an object key", quoteByte(c))
		}
		if c, err = s.mustSkipSpace(); err != nil {
			return err
		}
		if err := s.value(c, depth+1, next, nil); err != nil {
			return err
		}
		if top != nil {
			top.members++
		}
		if c, err = s.mustSkipSpace(); err != nil {
			return err
		}
		switch c {
		case '}':
			return nil
		case ',':
			if c, err = s.mustSkipSpace(); err != nil {
				return err
			}
		default:
			return s.syntax("invalid character %s after an object member", quoteByte(c))
		}
	}
}

// array reads the elements of an array after its '['. here are the targets
// whose value this array is (they count its elements).
func (s *scanner) array(depth int, here, below []int, top *topValue) error {
	c, err := s.mustSkipSpace()
	if err != nil {
		return err
	}
	if c == ']' {
		return nil
	}
	for n := 0; ; n++ {
		var next []int
		for _, i := range below {
			if s.targets[i].index[depth] == n {
				next = append(next, i)
			}
		}
		if err := s.value(c, depth+1, next, nil); err != nil {
			return err
		}
		for _, i := range here {
			s.targets[i].count++
		}
		if top != nil {
			top.members++
		}
		if c, err = s.mustSkipSpace(); err != nil {
			return err
		}
		switch c {
		case ']':
			return nil
		case ',':
			if c, err = s.mustSkipSpace(); err != nil {
				return err
			}
		default:
			return s.syntax("invalid character %s after an array element", quoteByte(c))
		}
	}
}

// str reads a string after its opening quote. It returns the decoded value
// when it is at most keep bytes long (complete is true), otherwise only its
// first bytes; with keep 0 it keeps nothing.
func (s *scanner) str(keep int) (val []byte, complete bool, err error) {
	s.key = s.key[:0]
	complete = true
	add := func(p []byte) {
		if !complete {
			return
		}
		if len(s.key)+len(p) > keep {
			complete = false
			return
		}
		s.key = append(s.key, p...)
	}
	var buf [utf8.UTFMax]byte
	for {
		c, err := s.must()
		if err != nil {
			return nil, false, err
		}
		switch {
		case c == '"':
			return s.key, complete, nil
		case c < 0x20:
			return nil, false, s.syntax("invalid control character %s in a string", quoteByte(c))
		case c != '\\':
			buf[0] = c
			add(buf[:1])
			continue
		}
		c, err = s.must()
		if err != nil {
			return nil, false, err
		}
		switch c {
		case '"', '\\', '/':
			buf[0] = c
		case 'b':
			buf[0] = '\b'
		case 'f':
			buf[0] = '\f'
		case 'n':
			buf[0] = '\n'
		case 'r':
			buf[0] = '\r'
		case 't':
			buf[0] = '\t'
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return nil, false, err
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate may be followed by \u and its low half.
				if b, err := s.r.Peek(2); err == nil && b[0] == '\\' && b[1] == 'u' {
					_, _ = s.next()
					_, _ = s.next()
					r2, err := s.hex4()
					if err != nil {
						return nil, false, err
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						add(utf8.AppendRune(buf[:0], utf8.RuneError))
						r = r2
						if utf16.IsSurrogate(r) {
							r = utf8.RuneError
						}
					}
				} else {
					r = utf8.RuneError
				}
			}
			add(utf8.AppendRune(buf[:0], r))
			continue
		default:
			return nil, false, s.syntax("invalid escape \\%s in a string", string(rune(c)))
		}
		add(buf[:1])
	}
}

func (s *scanner) hex4() (rune, error) {
	var r rune
	for i := 0; i < 4; i++ {
		c, err := s.must()
		if err != nil {
			return 0, err
		}
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, s.syntax("invalid character %s in a \\u escape", quoteByte(c))
		}
		r = r<<4 | rune(d)
	}
	return r, nil
}

// number reads a number whose first byte is c and returns its text, cut at
// maxCursorLen bytes (then cut is true).
func (s *scanner) number(c byte) (text string, cut bool, err error) {
	var b strings.Builder
	b.WriteByte(c)
	peek := func() (byte, bool, error) {
		p, err := s.r.Peek(1)
		if err == io.EOF {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, &readError{err}
		}
		return p[0], true, nil
	}
	take := func() {
		c, _ := s.next()
		if b.Len() < maxCursorLen {
			b.WriteByte(c)
		} else {
			cut = true
		}
	}
	digits := func(what string) error {
		n := 0
		for {
			c, ok, err := peek()
			if err != nil {
				return err
			}
			if !ok || c < '0' || c > '9' {
				break
			}
			take()
			n++
		}
		if n == 0 {
			return s.syntax("a number needs digits %s", what)
		}
		return nil
	}
	if c == '-' {
		c2, err := s.must()
		if err != nil {
			return "", false, err
		}
		if c2 < '0' || c2 > '9' {
			return "", false, s.syntax("invalid character %s after '-' in a number", quoteByte(c2))
		}
		b.WriteByte(c2)
		c = c2
	}
	if c != '0' {
		if c2, ok, err := peek(); err != nil {
			return "", false, err
		} else if ok && c2 >= '0' && c2 <= '9' {
			if err := digits("in its integer part"); err != nil {
				return "", false, err
			}
		}
	}
	if c2, ok, err := peek(); err != nil {
		return "", false, err
	} else if ok && c2 == '.' {
		take()
		if err := digits("after the decimal point"); err != nil {
			return "", false, err
		}
	}
	if c2, ok, err := peek(); err != nil {
		return "", false, err
	} else if ok && (c2 == 'e' || c2 == 'E') {
		take()
		if c3, ok, err := peek(); err != nil {
			return "", false, err
		} else if ok && (c3 == '+' || c3 == '-') {
			take()
		}
		if err := digits("in its exponent"); err != nil {
			return "", false, err
		}
	}
	return b.String(), cut, nil
}

// checkPath validates a dotted path.
func checkPath(path string) error {
	if path == "" {
		return errors.New("path is empty")
	}
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			return fmt.Errorf("path %q has an empty segment", path)
		}
	}
	return nil
}

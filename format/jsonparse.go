package format

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"unicode/utf8"
)

// SWAR constants: a byte of ones and of high bits in every byte.
const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// parser validates one record — a JSON object — the way encoding/json's
// scanner does (same grammar, same messages, same limit of 10,000 nested
// levels) and feeds the values of declared fields to a recMap. It works on
// a window of bytes that may end before the record does: then it returns
// errNeedMore, and the caller refills the window and parses the record
// again from its start (recMap.begin drops what the first attempt
// appended), so the parser keeps no state across windows.
type parser struct {
	b        []byte
	final    bool // no input follows b: a truncated multi-byte character is invalid, not incomplete
	r        *recMap
	root     *pathNode
	maxField int
	extras   bool // note undeclared fields (the Extra policy is not ignore)

	// Where the parse is, for the limits checked when the window ends.
	strStart  int  // the open string's quote, or -1
	strTopKey bool // the open string is a top-level key
	nestStart int  // the open nested value of a top-level field, or -1
	key       int  // the last top-level key is b[key:keyEnd] (-1: none yet)
	keyEnd    int
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// errNeedMore says the window ended before the record did.
var errNeedMore = errors.New("need more input")

// syntaxError is invalid JSON at b[at].
type syntaxError struct {
	at   int
	msg  string
	utf8 bool // invalid UTF-8 (msg is unused)
}

func (e *syntaxError) Error() string { return e.msg }

// fieldLimit is a value at b[at] longer than MaxFieldBytes, in the
// top-level field whose key is b[key:keyEnd] (key -1: none to name).
type fieldLimit struct{ at, key, keyEnd int }

func (e *fieldLimit) Error() string { return "field limit" }

func (p *parser) synErr(at int, ctx string) error {
	return &syntaxError{at: at, msg: "invalid character " + quoteChar(p.b[at]) + " " + ctx}
}

// record parses the object at b[0] and returns its length.
func (p *parser) record(b []byte, final bool) (int64, error) {
	p.b, p.final = b, final
	p.strStart, p.nestStart, p.key, p.keyEnd = -1, -1, -1, -1
	end, err := p.object(0, 1, p.root)
	return int64(end), err
}

// limitAtEnd checks the field limits when the window ends after n bytes.
func (p *parser) limitAtEnd(n int) error {
	switch {
	case p.strStart >= 0 && n-p.strStart > p.maxField:
		if p.strTopKey {
			return &fieldLimit{at: p.strStart, key: -1}
		}
		return &fieldLimit{at: p.strStart, key: p.key, keyEnd: p.keyEnd}
	case p.nestStart >= 0 && n-p.nestStart > p.maxField:
		return &fieldLimit{at: p.nestStart, key: p.key, keyEnd: p.keyEnd}
	}
	return nil
}

// ws returns the index of the first non-space byte at or after i.
func (p *parser) ws(i int) (int, error) {
	b := p.b
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\n', '\t', '\r':
		default:
			return i, nil
		}
	}
	return i, errNeedMore
}

// object parses the object at b[i] (depth 1: the record), mapping its
// members through node n (nil: nothing below is declared).
func (p *parser) object(i, depth int, n *pathNode) (int, error) {
	if depth > maxDepth {
		return 0, p.synErr(i, "exceeded max depth")
	}
	b := p.b
	i, err := p.ws(i + 1)
	if err != nil {
		return 0, err
	}
	if b[i] == '}' {
		return i + 1, nil
	}
	top := depth == 1
	for {
		if b[i] != '"' {
			return 0, p.synErr(i, "looking for beginning of object key string")
		}
		k0 := i
		var esc bool
		if i, esc, _, err = p.str(i, top); err != nil {
			return 0, err
		}
		k1 := i
		if top {
			p.key, p.keyEnd = k0, k1
		}
		if i, err = p.ws(i); err != nil {
			return 0, err
		}
		if b[i] != ':' {
			return 0, p.synErr(i, "after object key")
		}
		if i, err = p.ws(i + 1); err != nil {
			return 0, err
		}
		v0 := i
		nested := top && (b[i] == '{' || b[i] == '[')
		if nested {
			p.nestStart = i
		}
		var child *pathNode
		if n != nil {
			if !esc {
				child = n.child(b[k0+1 : k1-1])
			} else {
				p.r.tmp = appendUnescaped(p.r.tmp[:0], b[k0+1:k1-1])
				child = n.child(p.r.tmp)
			}
		}
		if child != nil {
			i, err = p.member(i, depth, child)
		} else {
			i, err = p.skip(i, depth)
			if err == nil && n != nil && p.extras && !n.leaf {
				p.r.extra(n, b, k0, k1, v0, i)
			}
		}
		if err != nil {
			return 0, err
		}
		if nested {
			if i-v0 > p.maxField {
				return 0, &fieldLimit{at: v0, key: p.key, keyEnd: p.keyEnd}
			}
			p.nestStart = -1
		}
		if i, err = p.ws(i); err != nil {
			return 0, err
		}
		switch b[i] {
		case ',':
			if i, err = p.ws(i + 1); err != nil {
				return 0, err
			}
		case '}':
			return i + 1, nil
		default:
			return 0, p.synErr(i, "after object key:value pair")
		}
	}
}

// member parses the value at b[i] of a declared key, node n, in an object
// at depth depth, and maps it.
func (p *parser) member(i, depth int, n *pathNode) (int, error) {
	r := p.r
	r.enter(n)
	b := p.b
	t := token{kind: b[i]}
	var end int
	var err error
	switch t.kind {
	case '{':
		if len(n.children) > 0 {
			end, err = p.object(i, depth+1, n)
		} else {
			end, err = p.skip(i, depth)
		}
	case '[':
		end, err = p.skip(i, depth)
	case '"':
		end, t.esc, t.nul, err = p.str(i, false)
	case 'n':
		if end, err = p.literal(i, "null"); err != nil {
			return 0, err
		}
		r.null(n)
		return end, nil
	case 't':
		end, err = p.literal(i, "true")
	case 'f':
		end, err = p.literal(i, "false")
	default:
		t.kind = '0'
		end, err = p.number(i)
	}
	if err != nil {
		return 0, err
	}
	t.raw = b[i:end]
	if len(n.cols) > 0 {
		r.value(n, &t)
	}
	if t.kind != '{' {
		r.notObject(n, &t)
	}
	return end, nil
}

// skip validates the value at b[i], in a container at depth depth.
func (p *parser) skip(i, depth int) (int, error) {
	switch p.b[i] {
	case '{':
		return p.object(i, depth+1, nil)
	case '[':
		return p.array(i, depth+1)
	case '"':
		end, _, _, err := p.str(i, false)
		return end, err
	case 't':
		return p.literal(i, "true")
	case 'f':
		return p.literal(i, "false")
	case 'n':
		return p.literal(i, "null")
	}
	return p.number(i)
}

// array validates the array at b[i].
func (p *parser) array(i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, p.synErr(i, "exceeded max depth")
	}
	b := p.b
	i, err := p.ws(i + 1)
	if err != nil {
		return 0, err
	}
	if b[i] == ']' {
		return i + 1, nil
	}
	for {
		if i, err = p.skip(i, depth); err != nil {
			return 0, err
		}
		if i, err = p.ws(i); err != nil {
			return 0, err
		}
		switch b[i] {
		case ',':
			if i, err = p.ws(i + 1); err != nil {
				return 0, err
			}
		case ']':
			return i + 1, nil
		default:
			return 0, p.synErr(i, "after array element")
		}
	}
}

// literal checks that b[i:] starts with lit (true, false or null).
func (p *parser) literal(i int, lit string) (int, error) {
	b := p.b
	for k := 1; k < len(lit); k++ {
		if i+k >= len(b) {
			return 0, errNeedMore
		}
		if b[i+k] != lit[k] {
			return 0, p.synErr(i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), nil
}

// number checks the number at b[i] and returns its end.
func (p *parser) number(i int) (int, error) {
	b := p.b
	j := i
	if b[j] == '-' {
		if j++; j >= len(b) {
			return 0, errNeedMore
		}
		if b[j] < '0' || b[j] > '9' {
			return 0, p.synErr(j, "in numeric literal")
		}
	} else if b[j] < '0' || b[j] > '9' {
		return 0, p.synErr(j, "looking for beginning of value")
	}
	if b[j] == '0' {
		j++
	} else {
		for j++; j < len(b) && '0' <= b[j] && b[j] <= '9'; j++ {
		}
	}
	if j < len(b) && b[j] == '.' {
		if j++; j >= len(b) {
			return 0, errNeedMore
		}
		if b[j] < '0' || b[j] > '9' {
			return 0, p.synErr(j, "after decimal point in numeric literal")
		}
		for j++; j < len(b) && '0' <= b[j] && b[j] <= '9'; j++ {
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		if j++; j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) {
			return 0, errNeedMore
		}
		if b[j] < '0' || b[j] > '9' {
			return 0, p.synErr(j, "in exponent of numeric literal")
		}
		for j++; j < len(b) && '0' <= b[j] && b[j] <= '9'; j++ {
		}
	}
	if j >= len(b) {
		return 0, errNeedMore // the number may go on
	}
	return j, nil
}

// strPlain marks the bytes a string holds as they are: not '"', '\\', a
// control character or the start of a multi-byte character.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str checks the string at b[i] and returns its end, whether it has
// escapes and whether one of them is \u0000. Strings longer than
// MaxFieldBytes (quotes and escapes included) are refused.
func (p *parser) str(i int, topKey bool) (end int, esc, nul bool, err error) {
	b := p.b
	p.strStart, p.strTopKey = i, topKey
	j := i + 1
	for {
		// Eight bytes at a time: find the first that is '"', '\\', a
		// control character or not ASCII. For an ASCII byte c the three
		// differences keep the high bit clear unless c < 0x20, c == '"'
		// or c == '\\' (a borrow only follows such a byte), and w's own
		// high bit marks the rest, so the lowest flagged byte is exact.
		for j+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[j:])
			m := (w - lo*0x20) | (w ^ (lo * '"') - lo) | (w ^ (lo * '\\') - lo)
			m = (m | w) & hi
			if m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for j < len(b) && strPlain[b[j]] {
			j++
		}
		if j >= len(b) {
			return 0, false, false, errNeedMore
		}
		switch c := b[j]; {
		case c == '"':
			j++
			if j-i > p.maxField {
				if topKey {
					return 0, false, false, &fieldLimit{at: i, key: -1}
				}
				return 0, false, false, &fieldLimit{at: i, key: p.key, keyEnd: p.keyEnd}
			}
			p.strStart = -1
			return j, esc, nul, nil
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return 0, false, false, errNeedMore
			}
			switch b[j+1] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				j += 2
			case 'u':
				zero := true
				for k := j + 2; k < j+6; k++ {
					if k >= len(b) {
						return 0, false, false, errNeedMore
					}
					c := b[k]
					if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
						return 0, false, false, p.synErr(k, "in \\u hexadecimal character escape")
					}
					zero = zero && c == '0'
				}
				nul = nul || zero
				j += 6
			default:
				return 0, false, false, p.synErr(j+1, "in string escape code")
			}
		case c < 0x20:
			return 0, false, false, p.synErr(j, "in string literal")
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size <= 1 {
				if !p.final && !utf8.FullRune(b[j:]) {
					return 0, false, false, errNeedMore
				}
				return 0, false, false, &syntaxError{at: j, utf8: true}
			}
			j += size
		}
	}
}

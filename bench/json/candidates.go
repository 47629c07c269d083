package jsonbench

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/go-json-experiment/json/jsontext"
	goccy "github.com/goccy/go-json"
	segjson "github.com/segmentio/encoding/json"
	"github.com/valyala/fastjson"

	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/schema"
)

// BatchRows is the batch size of every candidate (format's default).
const BatchRows = format.DefaultBatchRows

// Candidate decodes a shape's NDJSON into batches handed to sink.
type Candidate struct {
	Name   string
	Decode func(sh *Shape, sink func(*schema.Batch)) error
}

// Candidates are the decoders measured, sluice's own first.
var Candidates = []Candidate{
	{"sluice/workers=1", sluice(1)},
	{"sluice/workers=2", sluice(2)},
	{"encoding-json/map", stdMap},
	{"encoding-json/tokens", stdTokens},
	{"jsontext", jsontextValues},
	{"goccy-go-json/map", goccyMap},
	{"sonic/map", sonicMap},
	{"segmentio/tokenizer", segTokenizer},
	{"fastjson", fastjsonVisit(false)},
	{"fastjson+validate", fastjsonVisit(true)},
}

// mappers holds one Mapper per shape: a load builds its Mapper once and
// reads every object with it (and its recycled batches).
var mappers sync.Map

// sluice decodes through format.NewReader, the load path (validation,
// limits, error positions and the Mapper's casts included).
func sluice(workers int) func(sh *Shape, sink func(*schema.Batch)) error {
	return func(sh *Shape, sink func(*schema.Batch)) error {
		m, err := mapperFor(sh)
		if err != nil {
			return err
		}
		rd, err := format.NewReader(context.Background(), bytes.NewReader(sh.Data), format.ReadOptions{Format: format.InputNDJSON, Mapper: m, Workers: workers})
		if err != nil {
			return err
		}
		defer rd.Close()
		for {
			b, err := rd.Next(context.Background())
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			sink(b)
		}
	}
}

// mapperFor returns the shape's Mapper.
func mapperFor(sh *Shape) (*format.Mapper, error) {
	if m, ok := mappers.Load(sh.Name); ok {
		return m.(*format.Mapper), nil
	}
	cols := make([]format.Column, len(sh.Cols))
	for i, c := range sh.Cols {
		cols[i] = format.Column{Field: sh.Fields[i], Name: c.Name, Type: c.Type}
	}
	m, err := format.NewMapper(cols, nil)
	if err != nil {
		return nil, err
	}
	mv, _ := mappers.LoadOrStore(sh.Name, m)
	return mv.(*format.Mapper), nil
}

// rows builds batches from values handed over by a candidate, with the
// casts a load makes (bigint from a number, double, text; NULL for absent
// fields and null).
type rows struct {
	sh   *Shape
	b    *schema.Batch
	idx  map[string]int
	sink func(*schema.Batch)
	n    int64
}

// batches recycles each shape's batch, as format recycles its batches per
// Mapper, so that no candidate pays for growing its vectors again.
var batches sync.Map

func newRows(sh *Shape, sink func(*schema.Batch)) *rows {
	b, _ := batches.LoadOrStore(sh.Name+"/rows", schema.NewBatch(sh.Cols))
	r := &rows{sh: sh, b: b.(*schema.Batch), idx: map[string]int{}, sink: sink}
	r.b.Reset()
	for i, f := range sh.Fields {
		r.idx[f] = i
	}
	return r
}

func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// col returns the column of key, or -1.
func (r *rows) col(key []byte) int {
	if j, ok := r.idx[string(key)]; ok {
		return j
	}
	return -1
}

// number appends the number written as raw to column j.
func (r *rows) number(j int, raw []byte) error {
	v := &r.b.Vecs[j]
	switch v.Type {
	case schema.BigInt:
		n, err := strconv.ParseInt(view(raw), 10, 64)
		if err != nil {
			return err
		}
		v.AppendInt(n)
	case schema.Double:
		f, err := strconv.ParseFloat(view(raw), 64)
		if err != nil {
			return err
		}
		v.AppendFloat(f)
	default:
		v.AppendText(raw)
	}
	return nil
}

// text appends a decoded string to column j.
func (r *rows) text(j int, s []byte) error {
	v := &r.b.Vecs[j]
	if !v.Type.IsText() {
		return fmt.Errorf("column %d: a string for a %s", j, v.Type)
	}
	v.AppendText(s)
	return nil
}

// any appends a value decoded by encoding/json-like libraries (UseNumber)
// to column j.
func (r *rows) any(j int, x any) error {
	switch x := x.(type) {
	case nil:
		r.b.Vecs[j].AppendNull()
	case string:
		return r.text(j, []byte(x))
	case stdjson.Number:
		return r.number(j, []byte(x))
	default:
		return fmt.Errorf("column %d: unexpected %T", j, x)
	}
	return nil
}

// end ends a row: absent columns are NULL.
func (r *rows) end() {
	row := r.b.Len()
	for j := range r.b.Vecs {
		if v := &r.b.Vecs[j]; v.Len() == row {
			v.AppendNull()
		}
	}
	r.n++
	r.b.EndRow(r.n, r.n)
	if r.b.Len() == BatchRows {
		r.flush()
	}
}

func (r *rows) flush() {
	if r.b.Len() > 0 {
		r.sink(r.b)
		r.b.Reset()
	}
}

// lines calls fn with each line of data.
func lines(data []byte, fn func([]byte) error) error {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data)
		}
		if i > 0 {
			if err := fn(data[:i]); err != nil {
				return err
			}
		}
		data = data[min(i+1, len(data)):]
	}
	return nil
}

// stdMap is the decoder before issue 9: each record into a map with
// encoding/json (UseNumber), then cast.
func stdMap(sh *Shape, sink func(*schema.Batch)) error {
	r := newRows(sh, sink)
	dec := stdjson.NewDecoder(bytes.NewReader(sh.Data))
	dec.UseNumber()
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		for k, v := range m {
			if j := r.col([]byte(k)); j >= 0 {
				if err := r.any(j, v); err != nil {
					return err
				}
			}
		}
		r.end()
	}
	r.flush()
	return nil
}

// stdTokens streams encoding/json's Decoder.Token.
func stdTokens(sh *Shape, sink func(*schema.Batch)) error {
	r := newRows(sh, sink)
	dec := stdjson.NewDecoder(bytes.NewReader(sh.Data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if tok != stdjson.Delim('{') {
			return fmt.Errorf("want an object, got %v", tok)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			j := r.col([]byte(k.(string)))
			if j < 0 {
				var skip stdjson.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
				continue
			}
			v, err := dec.Token()
			if err != nil {
				return err
			}
			if err := r.any(j, v); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		r.end()
	}
	r.flush()
	return nil
}

// jsontextValues reads raw values with jsontext (encoding/json/v2's
// tokenizer), which validates as it goes; strings are unquoted with
// jsontext.AppendUnquote.
func jsontextValues(sh *Shape, sink func(*schema.Batch)) error {
	r := newRows(sh, sink)
	dec := jsontext.NewDecoder(bytes.NewReader(sh.Data), jsontext.AllowDuplicateNames(true))
	var buf []byte
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if tok.Kind() != '{' {
			return fmt.Errorf("want an object, got %v", tok.Kind())
		}
		for dec.PeekKind() != '}' {
			k, err := dec.ReadValue()
			if err != nil {
				return err
			}
			var j int
			if bytes.IndexByte(k, '\\') < 0 {
				j = r.col(k[1 : len(k)-1])
			} else {
				buf, _ = jsontext.AppendUnquote(buf[:0], k)
				j = r.col(buf)
			}
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if j < 0 {
				continue
			}
			switch v.Kind() {
			case 'n':
				r.b.Vecs[j].AppendNull()
			case '0':
				err = r.number(j, v)
			case '"':
				buf, err = jsontext.AppendUnquote(buf[:0], v)
				if err == nil {
					err = r.text(j, buf)
				}
			default:
				err = fmt.Errorf("unexpected %v", v.Kind())
			}
			if err != nil {
				return err
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		r.end()
	}
	r.flush()
	return nil
}

// goccyMap decodes each record into a map with goccy/go-json (UseNumber).
func goccyMap(sh *Shape, sink func(*schema.Batch)) error {
	r := newRows(sh, sink)
	dec := goccy.NewDecoder(bytes.NewReader(sh.Data))
	dec.UseNumber()
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		for k, v := range m {
			if j := r.col([]byte(k)); j >= 0 {
				if err := r.any(j, v); err != nil {
					return err
				}
			}
		}
		r.end()
	}
	r.flush()
	return nil
}

var sonicAPI = sonic.Config{UseNumber: true, ValidateString: true}.Froze()

// sonicMap decodes each line into a map with sonic (UseNumber, strings
// validated).
func sonicMap(sh *Shape, sink func(*schema.Batch)) error {
	r := newRows(sh, sink)
	err := lines(sh.Data, func(l []byte) error {
		var m map[string]any
		if err := sonicAPI.Unmarshal(l, &m); err != nil {
			return err
		}
		for k, v := range m {
			if j := r.col([]byte(k)); j >= 0 {
				if err := r.any(j, v); err != nil {
					return err
				}
			}
		}
		r.end()
		return nil
	})
	r.flush()
	return err
}

// segTokenizer streams segmentio's allocation-free Tokenizer over each
// line.
func segTokenizer(sh *Shape, sink func(*schema.Batch)) error {
	r := newRows(sh, sink)
	t := segjson.NewTokenizer(nil)
	err := lines(sh.Data, func(l []byte) error {
		t.Reset(l)
		j := -1
		for t.Next() {
			switch {
			case t.Depth != 1 || t.Delim != 0 && t.Delim != '{' && t.Delim != '[':
				// inside a nested value, or ':' and ','
			case t.Delim != 0:
				if t.Depth == 1 && j >= 0 {
					return fmt.Errorf("nested value for column %d", j)
				}
			case t.IsKey:
				j = r.col(t.String())
			case j < 0:
			case t.Value.Null():
				r.b.Vecs[j].AppendNull()
			case t.Value.String():
				if err := r.text(j, t.String()); err != nil {
					return err
				}
			default:
				if err := r.number(j, t.Value); err != nil {
					return err
				}
			}
		}
		if t.Err != nil {
			return t.Err
		}
		r.end()
		return nil
	})
	r.flush()
	return err
}

// fastjsonVisit parses each line with fastjson (a reused Parser, no
// allocation once warm) and visits the object's members. fastjson's parser
// skips checks encoding/json makes (accept_test.go); with validate each
// line goes through fastjson.ValidateBytes and utf8.Valid first, the
// checks sluice makes.
func fastjsonVisit(validate bool) func(sh *Shape, sink func(*schema.Batch)) error {
	return func(sh *Shape, sink func(*schema.Batch)) error {
		return fastjsonLines(sh, sink, validate)
	}
}

func fastjsonLines(sh *Shape, sink func(*schema.Batch), validate bool) error {
	r := newRows(sh, sink)
	var p fastjson.Parser
	err := lines(sh.Data, func(l []byte) error {
		if validate {
			if err := fastjson.ValidateBytes(l); err != nil {
				return err
			}
			if !utf8.Valid(l) {
				return errors.New("invalid UTF-8")
			}
		}
		v, err := p.ParseBytes(l)
		if err != nil {
			return err
		}
		o, err := v.Object()
		if err != nil {
			return err
		}
		var verr error
		o.Visit(func(k []byte, v *fastjson.Value) {
			j := r.col(k)
			if j < 0 || verr != nil {
				return
			}
			switch v.Type() {
			case fastjson.TypeNull:
				r.b.Vecs[j].AppendNull()
			case fastjson.TypeString:
				verr = r.text(j, v.GetStringBytes())
			case fastjson.TypeNumber:
				verr = r.number(j, []byte(v.String()))
			default:
				verr = errors.New("unexpected value")
			}
		})
		if verr != nil {
			return verr
		}
		r.end()
		return nil
	})
	r.flush()
	return err
}

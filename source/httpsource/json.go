package httpsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// shape is what the stop rules need to know about a page body.
type shape struct {
	empty   bool // no records: blank, [], {}, or an empty/null/absent ItemsPath
	items   int  // number of records, when counted
	counted bool // items is known
}

// inspect classifies a page body for the stop rules. Bodies that are neither
// a JSON array nor a JSON object count as non-empty with an unknown number of
// items.
func inspect(body []byte, itemsPath string) (shape, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return shape{empty: true, counted: true}, nil
	}
	switch t[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(t, &items); err != nil {
			return shape{}, fmt.Errorf("body looks like a JSON array but does not parse: %v", err)
		}
		return shape{empty: len(items) == 0, items: len(items), counted: true}, nil
	case '{':
		if itemsPath == "" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(t, &obj); err != nil {
				return shape{}, fmt.Errorf("body looks like a JSON object but does not parse: %v", err)
			}
			return shape{empty: len(obj) == 0}, nil
		}
		v, found, err := lookup(t, itemsPath)
		if err != nil {
			return shape{}, fmt.Errorf("items path %q: %v", itemsPath, err)
		}
		if !found || v == nil {
			return shape{empty: true, counted: true}, nil
		}
		items, ok := v.([]any)
		if !ok {
			return shape{}, fmt.Errorf("items path %q holds %s, not an array", itemsPath, jsonKind(v))
		}
		return shape{empty: len(items) == 0, items: len(items), counted: true}, nil
	}
	return shape{}, nil
}

// cursorAt returns the next cursor at a dotted path in a JSON body. ok is
// false when the path is absent or holds null or "". A number is returned as
// its JSON text; any other non-string value is an error.
func cursorAt(body []byte, path string) (cursor string, ok bool, err error) {
	v, found, err := lookup(body, path)
	if err != nil || !found {
		return "", false, err
	}
	switch c := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return c, c != "", nil
	case json.Number:
		return c.String(), true, nil
	}
	return "", false, fmt.Errorf("%q holds %s; a cursor must be a string or number", path, jsonKind(v))
}

// lookup decodes body and walks a dotted path through objects (and arrays, by
// numeric segment). found is false when a key or index is missing or a null
// is met on the way; walking into a string, number or boolean is an error.
func lookup(body []byte, path string) (v any, found bool, err error) {
	if err := checkPath(path); err != nil {
		return nil, false, err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("body is not JSON: %v", err)
	}
	if _, err := d.Token(); err == nil {
		return nil, false, errors.New("body is not JSON: data after the top-level value")
	}
	walked := ""
	for _, seg := range strings.Split(path, ".") {
		switch c := v.(type) {
		case nil:
			return nil, false, nil
		case map[string]any:
			if v, found = c[seg]; !found {
				return nil, false, nil
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false, nil
			}
			v = c[i]
		default:
			where := "the body"
			if walked != "" {
				where = strconv.Quote(walked)
			}
			return nil, false, fmt.Errorf("%s is %s, so it has no %q", where, jsonKind(v), seg)
		}
		if walked != "" {
			walked += "."
		}
		walked += seg
	}
	return v, true, nil
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

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

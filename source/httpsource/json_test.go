package httpsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// inspect classifies a whole body as scanPage does while streaming.
func inspect(body []byte, itemsPath string) (shape, error) {
	info, err := scanPage(bytes.NewReader(body), itemsPath, "")
	if err != nil {
		return shape{}, err
	}
	return info.shape, info.shapeErr
}

// cursorAt reads the next cursor of a whole body as scanPage does while
// streaming.
func cursorAt(body []byte, path string) (string, bool, error) {
	if err := checkPath(path); err != nil {
		return "", false, err
	}
	info, err := scanPage(bytes.NewReader(body), "", path)
	if err != nil {
		return "", false, fmt.Errorf("reading: %v", err)
	}
	return info.cursor, info.cursorOK, info.cursorErr
}

func FuzzScanPageAgreesWithEncodingJSON(f *testing.F) {
	for _, b := range []string{
		``, ` `, `[]`, `{}`, `[1,{"a":[2,3]},"x"]`, `{"data":[1,2],"next":"c"}`, `{"data":{"rows":[]}}`,
		`{"data":null}`, `{"data":"x"}`, `"text"`, `id,name`, `[1,`, `{"a":`, `{"next":123456789012345678901}`,
		`{"next":1.5e3}`, `{"pages":[{"c":"x"},{"c":"y"}]}`, `{"next":"a"} {"next":"b"}`, `{"a":1,"a":{"b":[]}}`,
		`{"d\u0061ta":[1],"n\u00e9xt":"\ud83d\ude00"}`, `[-0.5e-3, true, false, null, "\"\\\/\b\f\n\r\t"]`,
		`{"data":[1]} x`, `[01]`, `{"a" 1}`, `[1 2]`, `{"x":tru}`, "[\"\x01\"]",
	} {
		f.Add([]byte(b), "data", "next")
	}
	f.Add([]byte(`{"pages":[{"c":"x"},{"c":"y"}]}`), "pages", "pages.1.c")
	f.Fuzz(func(t *testing.T, body []byte, itemsPath, cursorPath string) {
		if checkPath(itemsPath) != nil || checkPath(cursorPath) != nil || strings.ContainsRune(itemsPath+cursorPath, utf8.RuneError) {
			return
		}
		// One byte at a time, to cross every buffer boundary.
		info, err := scanPage(iotest.OneByteReader(bytes.NewReader(body)), itemsPath, cursorPath)
		if err != nil {
			t.Fatalf("scanPage(%q): read error %v from a reader that has none", body, err)
		}
		sh, shErr := refInspect(body, itemsPath)
		c, ok, cErr := refCursorAt(body, cursorPath)
		first := byte(0)
		if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 {
			first = t[0]
		}
		if !json.Valid(body) {
			// scanPage is stricter than the decoder after the top-level
			// value; on invalid JSON it need only fail where it fails.
			if (first == '[' || first == '{') && info.shapeErr == nil {
				t.Fatalf("scanPage(%q) classified invalid JSON as %+v", body, info.shape)
			}
			if info.cursorErr == nil && len(bytes.TrimSpace(body)) > 0 {
				t.Fatalf("scanPage(%q) read cursor %q from invalid JSON", body, info.cursor)
			}
			return
		}
		if (info.shapeErr != nil) != (shErr != nil) || info.shape != sh {
			t.Fatalf("scanPage(%q, %q) shape = %+v, %v; encoding/json gives %+v, %v", body, itemsPath, info.shape, info.shapeErr, sh, shErr)
		}
		if !utf8.Valid(body) {
			// encoding/json turns invalid UTF-8 in a string into U+FFFD;
			// scanPage passes the cursor's bytes on unchanged.
			info.cursor = c
		}
		if (info.cursorErr != nil) != (cErr != nil) || info.cursor != c || info.cursorOK != ok {
			t.Fatalf("scanPage(%q, %q) cursor = %q, %v, %v; encoding/json gives %q, %v, %v", body, cursorPath, info.cursor, info.cursorOK, info.cursorErr, c, ok, cErr)
		}
	})
}

func TestScanPageNamesTheByteOffsetOfASyntaxError(t *testing.T) {
	info, err := scanPage(strings.NewReader(`{"data":[1,2,}`), "data", "")
	if err != nil || info.shapeErr == nil || !strings.Contains(info.shapeErr.Error(), "at byte 14") {
		t.Errorf("shapeErr = %v (read error %v), want the offset of the bad '}' (byte 14)", info.shapeErr, err)
	}
}

func TestScanPageReturnsTheReadersError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := scanPage(iotest.ErrReader(boom), "data", "next")
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
	_, err = scanPage(io.MultiReader(strings.NewReader(`{"data":[1,`), iotest.ErrReader(boom)), "data", "next")
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error mid-body", err)
	}
}

// refInspect is the encoding/json classifier scanPage replaced; the fuzz
// test holds scanPage to it. It classifies a page body for the stop rules. Bodies that are neither
// a JSON array nor a JSON object count as non-empty with an unknown number of
// items.
func refInspect(body []byte, itemsPath string) (shape, error) {
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
		v, found, err := refLookup(t, itemsPath)
		if err != nil {
			return shape{}, fmt.Errorf("items path %q: %v", itemsPath, err)
		}
		if !found || v == nil {
			return shape{empty: true, counted: true}, nil
		}
		items, ok := v.([]any)
		if !ok {
			return shape{}, fmt.Errorf("items path %q holds %s, not an array", itemsPath, refKind(v))
		}
		return shape{empty: len(items) == 0, items: len(items), counted: true}, nil
	}
	return shape{}, nil
}

// refCursorAt is the encoding/json cursor reader scanPage replaced. It returns the next cursor at a dotted path in a JSON body. ok is
// false when the path is absent or holds null or "". A number is returned as
// its JSON text; any other non-string value is an error.
func refCursorAt(body []byte, path string) (cursor string, ok bool, err error) {
	v, found, err := refLookup(body, path)
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
	return "", false, fmt.Errorf("%q holds %s; a cursor must be a string or number", path, refKind(v))
}

// refLookup decodes body and walks a dotted path through objects (and arrays, by
// numeric segment). found is false when a key or index is missing or a null
// is met on the way; walking into a string, number or boolean is an error.
func refLookup(body []byte, path string) (v any, found bool, err error) {
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
			return nil, false, fmt.Errorf("%s is %s, so it has no %q", where, refKind(v), seg)
		}
		if walked != "" {
			walked += "."
		}
		walked += seg
	}
	return v, true, nil
}

func refKind(v any) string {
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

func TestScanPageRefusesACursorLongerThan64KiB(t *testing.T) {
	for _, body := range []string{
		`{"next":"` + strings.Repeat("c", maxCursorLen+1) + `"}`, // a string
		`{"next":` + strings.Repeat("7", maxCursorLen+1) + `}`,   // a number
	} {
		info, err := scanPage(strings.NewReader(body), "", "next")
		if err != nil || info.cursorErr == nil || !strings.Contains(info.cursorErr.Error(), "longer than 65536 bytes") {
			t.Errorf("body of %d bytes: cursor error %v (read error %v), want it refused as too long", len(body), info.cursorErr, err)
		}
	}
	cursor := strings.Repeat("c", maxCursorLen)
	info, err := scanPage(strings.NewReader(`{"next":"`+cursor+`"}`), "", "next")
	if err != nil || info.cursorErr != nil || info.cursor != cursor {
		t.Errorf("a cursor of exactly 64 KiB: err %v, %v; want it read whole", err, info.cursorErr)
	}
}

package jsonbench

import (
	stdjson "encoding/json"
	"testing"

	"github.com/valyala/fastjson"
)

// TestFastjsonParsesWhatEncodingJSONRefuses records why fastjson's parser
// alone cannot stand in for sluice's: it accepts records that encoding/json
// (and so sluice, which refuses the same inputs, plus invalid UTF-8)
// rejects. Its separate Validate pass refuses them, which is why the
// fastjson+validate candidate is the one to compare.
func TestFastjsonParsesWhatEncodingJSONRefuses(t *testing.T) {
	var p fastjson.Parser
	accepted := 0
	for _, in := range []string{
		"{\"a\":\"tab\there\"}", // a raw control character in a string
		`{"a":"\q"}`,            // an invalid escape
		`{"a":01}`,              // a leading zero
		`{"a":1.}`,              // a number without decimals
		`{"a":-}`,               // a sign without digits
	} {
		if stdjson.Valid([]byte(in)) {
			t.Fatalf("encoding/json accepts %q", in)
		}
		if _, err := p.Parse(in); err == nil {
			accepted++
			t.Logf("fastjson.Parse accepts %q", in)
		}
		if err := fastjson.Validate(in); err == nil {
			t.Errorf("fastjson.Validate accepts %q", in)
		}
	}
	if accepted == 0 {
		t.Error("fastjson.Parse refuses all of them: the candidate needs no Validate pass")
	}
}

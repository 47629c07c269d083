package format

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/schema"
)

// appendCastMatches checks that AppendCast appends what CastString returns
// for s, or fails with the same error and leaves the vector as it was.
func appendCastMatches(t *testing.T, k schema.Type, s string) {
	t.Helper()
	want, werr := CastString(k, s)
	var v schema.Vector
	v.Reset(k)
	gerr := AppendCast(&v, []byte(s))
	if fmt.Sprint(werr) != fmt.Sprint(gerr) {
		t.Fatalf("%s %q: AppendCast error %v, CastString error %v", k, s, gerr, werr)
	}
	if werr != nil {
		if v.Len() != 0 {
			t.Fatalf("%s %q: a failed AppendCast appended %d values", k, s, v.Len())
		}
		return
	}
	if v.Len() != 1 {
		t.Fatalf("%s %q: AppendCast appended %d values", k, s, v.Len())
	}
	got := v.Value(0)
	switch w := want.(type) {
	case int32:
		want = int64(w)
	case float32:
		want = float64(w)
	}
	if f, ok := want.(float64); ok {
		if g, ok := got.(float64); !ok || math.Float64bits(g) != math.Float64bits(f) {
			t.Fatalf("%s %q: AppendCast gives %v (%#x), CastString %v (%#x)", k, s, got, math.Float64bits(g), f, math.Float64bits(f))
		}
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s %q: AppendCast gives %#v, CastString %#v", k, s, got, want)
	}
}

func TestAppendCastCastsLikeCastString(t *testing.T) {
	values := []string{"", "0", "-0", "+0", "007", "1", "-1", "+5", "2147483647", "2147483648", "-2147483648", "-2147483649",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "123456789012345678", "1234567890123456789",
		"1_000", "0x10", " 1", "1 ", "1.5", ".5", "5.", ".", "-", "+", "e5", "1e5", "1E-5", "1e", "1e+", "1e-400", "1e400",
		"14.278805574733003", "0.000123", "3.4028235e38", "3.4028236e38", "1e39", "-1e39", "1.4e-45", "1e-46",
		"inf", "NaN", "-Inf", "1..2", "1.2.3", "12e3.4", "00000000000000000000001.5", "1.0000000000000000000001",
		"true", "FALSE", "t", "yes", "2020-08-07", "2020-8-7", "2020-08-07T14:00:00Z", "2020-08-07 14:00:00.5",
		`{"a":1}`, `[1,`, "héllo",
	}
	for _, k := range schema.Types {
		for _, s := range values {
			appendCastMatches(t, k, s)
		}
	}
}

func TestAppendCastReadsFloatsToTheBitsOfParseFloat(t *testing.T) {
	// Random decimals in the forms CSV files hold: 1 to 19 significant
	// digits, a decimal point anywhere, sometimes an exponent.
	r := rand.New(rand.NewPCG(1, 2))
	for range 400_000 {
		var s string
		switch r.IntN(4) {
		case 0:
			s = strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(20)-10)), 'g', -1, 64)
		case 1:
			s = strconv.FormatFloat(float64(float32(r.Float64()*1000)), 'f', -1, 32)
		case 2:
			digits := strconv.FormatUint(r.Uint64()>>r.IntN(64), 10)
			p := r.IntN(len(digits) + 1)
			s = digits[:p] + "." + digits[p:]
		default:
			s = fmt.Sprintf("%de%d", r.Int64N(1e9), r.IntN(60)-30)
		}
		if r.IntN(2) == 0 {
			s = "-" + s
		}
		appendCastMatches(t, schema.Real, s)
		appendCastMatches(t, schema.Double, s)
	}
}

func TestParseFloatFastLeavesFloat32MidpointsToStrconv(t *testing.T) {
	// 1 + 2^-24 is the midpoint between float32 1 and its successor: its
	// decimal (and decimals just around it) must not be rounded twice.
	mid := 1 + math.Pow(2, -24)
	for _, d := range []float64{0, 1e-17, -1e-17, 1e-16, -1e-16} {
		s := strconv.FormatFloat(mid+d, 'f', 19, 64)
		appendCastMatches(t, schema.Real, s[:min(len(s), 20)])
	}
	if _, ok := parseFloatFast([]byte("1.000000059604644775"), true); ok {
		t.Errorf("parseFloatFast took a decimal next to a float32 midpoint")
	}
}

func FuzzAppendCast(f *testing.F) {
	for _, s := range []string{"1", "-2.5", "14.278805574733003", "1e5", "2020-08-07", "true", "", "x"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, s string, k uint8) {
		appendCastMatches(t, schema.Types[int(k)%len(schema.Types)], s)
	})
}

package format

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
)

func TestCastStringConvertsValuesToEachKind(t *testing.T) {
	tests := []struct {
		kind schema.Type
		in   string
		want any
	}{
		{schema.Text, "Africa", "Africa"},
		{schema.Text, " padded ", " padded "},
		{schema.Integer, "1965", int32(1965)},
		{schema.Integer, "-2147483648", int32(math.MinInt32)},
		{schema.Integer, "+7", int32(7)},
		{schema.BigInt, "9223372036854775807", int64(math.MaxInt64)},
		{schema.Real, "14.278805574733003", float32(14.278805574733003)},
		{schema.Real, "1e-3", float32(0.001)},
		{schema.Double, "14.278805574733003", 14.278805574733003},
		{schema.Double, "-0", math.Copysign(0, -1)},
		{schema.Boolean, "true", true},
		{schema.Boolean, "FALSE", false},
		{schema.Boolean, "1", true},
		{schema.Boolean, "f", false},
		{schema.Date, "2020-08-07", time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC)},
		{schema.Timestamp, "2020-08-07T14:00:00+02:00", time.Date(2020, 8, 7, 12, 0, 0, 0, time.UTC)},
		{schema.Timestamp, "2020-08-07T14:00:00.25Z", time.Date(2020, 8, 7, 14, 0, 0, 250000000, time.UTC)},
		{schema.Timestamp, "2020-08-07T14:00:00", time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)},
		{schema.Timestamp, "2020-08-07 14:00:00.5", time.Date(2020, 8, 7, 14, 0, 0, 500000000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %q", tt.kind, tt.in), func(t *testing.T) {
			got, err := CastString(tt.kind, tt.in)
			if err != nil {
				t.Fatalf("CastString: %v", err)
			}
			if fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", tt.want, tt.want) {
				t.Errorf("got %T %v, want %T %v", got, got, tt.want, tt.want)
			}
			if ts, ok := got.(time.Time); ok && ts.Location() != time.UTC {
				t.Errorf("time %v is not in UTC", ts)
			}
		})
	}
}

func TestCastStringMakesTheEmptyStringNullForEveryKind(t *testing.T) {
	for _, k := range schema.Types {
		if got, err := CastString(k, ""); got != nil || err != nil {
			t.Errorf("CastString(%s, \"\") = %v, %v; want nil, nil", k, got, err)
		}
	}
}

func TestCastStringRejectsValuesThatDoNotFitTheKind(t *testing.T) {
	tests := []struct {
		kind schema.Type
		in   string
		msg  string
	}{
		{schema.Integer, "abc", `want integer, got "abc"`},
		{schema.Integer, "1965.0", `want integer, got "1965.0"`},
		{schema.Integer, " 1965", `want integer, got " 1965"`},
		{schema.Integer, "2147483648", `want integer, got "2147483648" (out of range)`},
		{schema.BigInt, "1e3", `want bigint, got "1e3"`},
		{schema.BigInt, "9223372036854775808", `want bigint, got "9223372036854775808" (out of range)`},
		{schema.Real, "abc", `want real, got "abc"`},
		{schema.Real, "1e39", `want real, got "1e39" (out of range)`},
		{schema.Real, "NaN", `want real, got "NaN" (not finite)`},
		{schema.Double, "Inf", `want double, got "Inf" (not finite)`},
		{schema.Double, "1,5", `want double, got "1,5"`},
		{schema.Boolean, "yes", `want boolean, got "yes"`},
		{schema.Date, "07/08/2020", `want date (YYYY-MM-DD), got "07/08/2020"`},
		{schema.Timestamp, "yesterday", `want timestamp (RFC 3339, e.g. 2006-01-02T15:04:05Z), got "yesterday"`},
		{schema.Integer, strings.Repeat("9", 60), `want integer, got "` + strings.Repeat("9", 40) + `…" (out of range)`},
		{schema.Type("int8"), "1", `unknown column kind "int8"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %.20q", tt.kind, tt.in), func(t *testing.T) {
			got, err := CastString(tt.kind, tt.in)
			if err == nil || err.Error() != tt.msg {
				t.Errorf("CastString = %v, %v; want error %q", got, err, tt.msg)
			}
		})
	}
}

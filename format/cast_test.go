package format

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCastStringConvertsValuesToEachKind(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want any
	}{
		{String, "Africa", "Africa"},
		{String, " padded ", " padded "},
		{Int32, "1965", int32(1965)},
		{Int32, "-2147483648", int32(math.MinInt32)},
		{Int32, "+7", int32(7)},
		{Int64, "9223372036854775807", int64(math.MaxInt64)},
		{Float32, "14.278805574733003", float32(14.278805574733003)},
		{Float32, "1e-3", float32(0.001)},
		{Float64, "14.278805574733003", 14.278805574733003},
		{Float64, "-0", math.Copysign(0, -1)},
		{Bool, "true", true},
		{Bool, "FALSE", false},
		{Bool, "1", true},
		{Bool, "f", false},
		{Date, "2020-08-07", time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC)},
		{Timestamp, "2020-08-07T14:00:00+02:00", time.Date(2020, 8, 7, 12, 0, 0, 0, time.UTC)},
		{Timestamp, "2020-08-07T14:00:00.25Z", time.Date(2020, 8, 7, 14, 0, 0, 250000000, time.UTC)},
		{Timestamp, "2020-08-07T14:00:00", time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)},
		{Timestamp, "2020-08-07 14:00:00.5", time.Date(2020, 8, 7, 14, 0, 0, 500000000, time.UTC)},
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
	for _, k := range kinds {
		if got, err := CastString(k, ""); got != nil || err != nil {
			t.Errorf("CastString(%s, \"\") = %v, %v; want nil, nil", k, got, err)
		}
	}
}

func TestCastStringRejectsValuesThatDoNotFitTheKind(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		msg  string
	}{
		{Int32, "abc", `want int32, got "abc"`},
		{Int32, "1965.0", `want int32, got "1965.0"`},
		{Int32, " 1965", `want int32, got " 1965"`},
		{Int32, "2147483648", `want int32, got "2147483648" (out of range)`},
		{Int64, "1e3", `want int64, got "1e3"`},
		{Int64, "9223372036854775808", `want int64, got "9223372036854775808" (out of range)`},
		{Float32, "abc", `want float32, got "abc"`},
		{Float32, "1e39", `want float32, got "1e39" (out of range)`},
		{Float32, "NaN", `want float32, got "NaN" (not finite)`},
		{Float64, "Inf", `want float64, got "Inf" (not finite)`},
		{Float64, "1,5", `want float64, got "1,5"`},
		{Bool, "yes", `want bool, got "yes"`},
		{Date, "07/08/2020", `want date (YYYY-MM-DD), got "07/08/2020"`},
		{Timestamp, "yesterday", `want timestamp (RFC 3339, e.g. 2006-01-02T15:04:05Z), got "yesterday"`},
		{Int32, strings.Repeat("9", 60), `want int32, got "` + strings.Repeat("9", 40) + `…" (out of range)`},
		{Kind("int8"), "1", `unknown column kind "int8"`},
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

func TestParseKindAcceptsExactlyTheKindNames(t *testing.T) {
	for _, k := range kinds {
		if got, err := ParseKind(string(k)); got != k || err != nil {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "Int32", "int", "float", "varchar"} {
		if _, err := ParseKind(s); err == nil || !strings.Contains(err.Error(), "want one of string, int32, int64, float32, float64, bool, date, timestamp") {
			t.Errorf("ParseKind(%q) error = %v", s, err)
		}
	}
}

package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/event"
)

func versionOf(t time.Time, seq, key, etag string) string {
	var r event.Record
	r.EventTime = t
	r.S3.Object.Key = key
	r.S3.Object.Sequencer = seq
	return objectVersion(r, etag)
}

// Byte-wise order of objectVersion is version order: event time first,
// then the sequencer as a number whatever its length and leading zeros;
// versions of different objects differ even at equal time and sequencer.
func TestObjectVersionOrdersByTimeThenSequencerAsANumber(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	ordered := []string{
		versionOf(t0, "", "k", `"a"`),
		versionOf(t0, "9", "k", `"a"`),
		versionOf(t0, "0A", "k", `"a"`),
		versionOf(t0, "ff", "k", `"a"`),
		versionOf(t0, "00100", "k", `"a"`),
		versionOf(t0, "0062E9B1F4C6A7D3E8", "k", `"a"`),
		versionOf(t0.Add(time.Nanosecond), "", "k", `"a"`),
		versionOf(t0.Add(time.Hour), "1", "k", `"a"`),
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i-1] >= ordered[i] {
			t.Errorf("version %d %q does not sort before version %d %q", i-1, ordered[i-1], i, ordered[i])
		}
	}
	if a, b := versionOf(t0, "0A", "k", `"a"`), versionOf(t0, "a", "k", `"a"`); a != b {
		t.Errorf("sequencers 0A and a are the same number: %q != %q", a, b)
	}
	same := versionOf(t0, "5", "k", `"a"`)
	for _, other := range []string{versionOf(t0, "5", "k2", `"a"`), versionOf(t0, "5", "k", `"b"`)} {
		if other == same {
			t.Errorf("two object versions share version %q", same)
		}
	}
	if n := len(versionOf(t0, "", "posts/part-00001.ndjson", `"d41d8cd98f00b204e9800998ecf8427e"`)); n != 40 {
		t.Errorf("version without sequencer is %d bytes, want 40", n)
	}
	// Stored versions written before the compact form (the sequencer
	// padded to 32 digits, key and ETag spelled out) order against new
	// ones by their event time.
	old := "01796198400000000000|" + strings.Repeat("0", 32) + "|k|\"a\""
	if !(old < versionOf(t0.Add(time.Second), "", "k", `"a"`)) || !(old > versionOf(t0.Add(-time.Second), "", "k", `"a"`)) {
		t.Errorf("a stored old-form version does not order by its time against new ones")
	}
}

// TestURLsInMessagesHideTokensAndPasswords: NATS reads a user given alone
// as a token (the embedded queue's URL carries one), so it is hidden too.
func TestURLsInMessagesHideTokensAndPasswords(t *testing.T) {
	for raw, want := range map[string]string{
		"nats://s3cr3t@127.0.0.1:4222":             "nats://REDACTED@127.0.0.1:4222",
		"amqp://guest:s3cr3t@127.0.0.1:5672/":      "amqp://guest:xxxxx@127.0.0.1:5672/",
		"nats://127.0.0.1:4222":                    "nats://127.0.0.1:4222",
		"postgres://u:s3cr3t@h/db?sslmode=disable": "postgres://u:xxxxx@h/db?sslmode=disable",
		"nats://s3cr3t@[bad":                       "…@[bad",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

package fault

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/warehouse"
)

func TestKindOfClassifiesErrors(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"an unknown failure is retried", refused, KindTransient},
		{"a wrapped unknown failure is retried", fmt.Errorf("load x: %w", refused), KindTransient},
		{"a decode error is permanent", fmt.Errorf("object a.json: %w", &format.RecordError{Record: 2, Err: errors.New("truncated")}), KindPermanent},
		{"rows the warehouse rejects are permanent", fmt.Errorf("load: %w: null key", warehouse.ErrInvalidData), KindPermanent},
		{"a queue message that is no notification is permanent", func() error {
			_, _, err := event.ParseNotification([]byte("hello"), event.KeyURL)
			return fmt.Errorf("inbox message 7: %w", err)
		}(), KindPermanent},
		{"an explicit mark is permanent", Permanent(refused), KindPermanent},
		{"transient overrides a permanent cause", Transient(fmt.Errorf("x: %w", warehouse.ErrInvalidData)), KindTransient},
		{"the outermost mark wins", Permanent(Transient(refused)), KindPermanent},
		{"cancellation is transient", fmt.Errorf("load: %w", context.Canceled), KindTransient},
		{"a deadline is transient", context.DeadlineExceeded, KindTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %s, want %s", tt.err, got, tt.want)
			}
			if IsPermanent(tt.err) != (tt.want == KindPermanent) || IsTransient(tt.err) != (tt.want == KindTransient) {
				t.Errorf("IsPermanent/IsTransient disagree with KindOf for %v", tt.err)
			}
		})
	}
	if IsPermanent(nil) || IsTransient(nil) || Permanent(nil) != nil || Transient(nil) != nil {
		t.Error("nil must be neither permanent nor transient, and marks of nil must stay nil")
	}
	if err := Permanent(refused); !errors.Is(err, refused) || err.Error() != refused.Error() {
		t.Errorf("Permanent changes the error: %v", err)
	}
}

func TestRetryBacksOffExponentiallyUpToTheCapWithJitter(t *testing.T) {
	r := Retry{Backoff: time.Second, MaxBackoff: 8 * time.Second}
	for attempt, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 8 * time.Second, 60: 8 * time.Second} {
		for range 50 {
			if d := r.Delay(attempt); d < full/2 || d > full {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", attempt, d, full/2, full)
			}
		}
	}
}

func TestRetryGivesUpAfterItsBudget(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Retry{For: time.Hour}
	if r.GiveUp(first, first.Add(59*time.Minute)) || !r.GiveUp(first, first.Add(time.Hour)) {
		t.Error("a one-hour budget must allow retries for 59m and stop at 1h")
	}
	if (Retry{}).Budget() != DefaultRetryFor || DefaultRetryFor < time.Hour {
		t.Errorf("default budget %s: want hours, not seconds", (Retry{}).Budget())
	}
}

// readJSON reads a JSON object through format.NewReader to its end and
// returns the error that stopped it.
func readJSON(t *testing.T, r io.Reader) error {
	t.Helper()
	m, err := format.NewMapper([]format.Column{{Field: "a", Type: "bigint"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := format.NewReader(t.Context(), r, format.ReadOptions{Format: format.InputJSON, Mapper: m})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for {
		if _, err := rd.Next(t.Context()); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func TestAStoreReadFailingMidObjectIsTransientButACorruptGzipIsNot(t *testing.T) {
	reset := errors.New("read tcp 127.0.0.1:7070: connection reset by peer")
	r := io.MultiReader(strings.NewReader(`[{"a": 1}, {"a": `), iotest.ErrReader(reset))
	err := readJSON(t, r)
	if err == nil || !errors.Is(err, reset) {
		t.Fatalf("DecodeJSON = %v, want the reader's error", err)
	}
	if KindOf(err) != KindTransient {
		t.Errorf("a read failure inside a RecordError is %s, want transient: %v", KindOf(err), err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`[{"a": 1}, {"a": 2}]`))
	w.Close()
	corrupt := gz.Bytes()[:gz.Len()-6] // cut the gzip trailer
	err = readJSON(t, bytes.NewReader(corrupt))
	if err == nil || KindOf(err) != KindPermanent {
		t.Errorf("a truncated gzip object: err = %v, kind %s; want permanent", err, KindOf(err))
	}
}

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rssLimit is what the must-show allows the sluice process: its peak
// resident set (VmHWM) stays under 512 MiB whatever one object holds.
const rssLimit = 512 << 20

// memorySpec loads everything under in/ into table rows. The format is
// chosen by the key (.ndjson → NDJSON, else JSON; .gz is detected by its
// magic bytes).
const memorySpec = `name: memory
queue: "embedded?ack_wait=30s"
loads:
  rows:
    on: {prefix: in/}
    table: rows
    write: append
    columns: {id: bigint, v: text}
`

// measured is one `sluice run --once` and what it cost.
type measured struct {
	result
	maxRSS int64 // bytes
	took   time.Duration
}

// runMeasured runs `sluice run --once` on dataDir and measures the peak
// resident set of the process: ru_maxrss of the rusage that wait4 returns
// for the child (Go's ProcessState.SysUsage; KiB on Linux), the kernel's
// own high-water mark of the process's RSS over its whole life — the VmHWM
// that /proc/PID/status shows while it runs, which can no longer be read
// once it has exited, and which polling would only sample. It also covers
// any descendant the process waited for (a load starts none). It can only
// over-report: the mark starts from the test process's own RSS when it
// forked (exec keeps it), so a large test process makes it pessimistic;
// e2e/corpus_test.go's corpusRun forks from a small helper instead.
func runMeasured(t *testing.T, dataDir string, env ...string) measured {
	t.Helper()
	spec := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(spec, []byte(memorySpec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--data-dir="+dataDir, "-f", spec, "--once")
	cmd.Env = append(cleanEnv(), env...)
	return measure(ctx, t, cmd)
}

// measure runs cmd (ctx is its context) and returns its result, its
// duration and its peak RSS: ru_maxrss of the rusage wait4 returned.
func measure(ctx context.Context, t *testing.T, cmd *exec.Cmd) measured {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	m := measured{took: time.Since(start)}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok || ctx.Err() != nil {
			t.Fatalf("%s: %v (after %s)\nstderr:\n%s", strings.Join(cmd.Args, " "), err, m.took, tail(errb.String(), 3000))
		}
	}
	m.result = result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatalf("no rusage for %s (%T)", cmd.Path, cmd.ProcessState.SysUsage())
	}
	m.maxRSS = ru.Maxrss << 10 // KiB on Linux
	t.Logf("%s: exit %d in %s, peak RSS %.1f MiB", filepath.Base(cmd.Path), m.code, m.took.Round(100*time.Millisecond), float64(m.maxRSS)/(1<<20))
	return m
}

// rssProbeEnv, set to a number of MiB, makes the test binary a probe for
// measure: it fills that much memory and exits, before TestMain builds
// anything.
const rssProbeEnv = "E2E_RSS_PROBE_MIB"

func init() {
	mib, err := strconv.Atoi(os.Getenv(rssProbeEnv))
	if err != nil || mib <= 0 {
		return
	}
	b := make([]byte, mib<<20)
	var sum byte
	for i := 0; i < len(b); i += 4096 { // a write makes each page resident
		b[i] = byte(i >> 12)
		sum += b[i]
	}
	fmt.Println(sum)
	os.Exit(0)
}

// checkRSS fails the test when the run's peak RSS reached rssLimit.
func checkRSS(t *testing.T, m measured) {
	t.Helper()
	if m.maxRSS >= rssLimit {
		t.Errorf("peak RSS of sluice run --once = %.1f MiB, want < %d MiB", float64(m.maxRSS)/(1<<20), rssLimit>>20)
	}
}

// writeInput creates <dataDir>/lake/in/name with what fill writes (through
// a gzip writer at level when level != 0, else as is) and backdates it so
// that the owning sluice takes it as settled at once. It returns the size
// on disk.
func writeInput(t *testing.T, dataDir, name string, level int, fill func(w io.Writer) error) int64 {
	t.Helper()
	start := time.Now()
	writeObject(t, dataDir, "in/"+name, func(w io.Writer) error {
		if level == 0 {
			return fill(w)
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return err
		}
		if err := fill(zw); err != nil {
			return err
		}
		return zw.Close()
	})
	fi, err := os.Stat(filepath.Join(dataDir, "lake", "in", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote in/%s: %d bytes on disk in %s", name, fi.Size(), time.Since(start).Round(100*time.Millisecond))
	return fi.Size()
}

// repeat writes n bytes of c.
func repeat(w io.Writer, c byte, n int64) error {
	block := bytes.Repeat([]byte{c}, 1<<20)
	for n > 0 {
		k := min(n, int64(len(block)))
		if _, err := w.Write(block[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// writeRows writes NDJSON records {"id":N,"v":"<pad>"} for N in [0, n).
func writeRows(w io.Writer, n int64, pad string) error {
	var b []byte
	for i := int64(0); i < n; i++ {
		b = append(b[:0], `{"id":`...)
		b = strconv.AppendInt(b, i, 10)
		b = append(b, `,"v":"`...)
		b = append(b, pad...)
		b = append(b, "\"}\n"...)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// onlyDeadLetter returns the single `sluice dlq ls` row, failing unless there
// is exactly one and it names key.
func onlyDeadLetter(t *testing.T, dataDir, key string) string {
	t.Helper()
	dl := mustRun(t, nil, "dlq", "ls", "--data-dir="+dataDir)
	lines := deadLetterLines(dl.stdout)
	if len(lines) != 1 || !strings.Contains(lines[0], key) {
		t.Fatalf("dlq ls shows %d dead letters, want one for %s:\n%s", len(lines), key, dl.stdout)
	}
	t.Logf("dlq ls: %s", lines[0])
	return lines[0]
}

// count runs a one-value query through `sluice sql`.
func count(t *testing.T, dataDir, query string, env ...string) string {
	t.Helper()
	r := mustRun(t, env, "sql", "--data-dir="+dataDir, "--format=csv", "--no-header", query)
	return strings.TrimSpace(r.stdout)
}

// TestPeakRSSStaysUnder512MiB runs `sluice run --once` on objects built to
// exhaust memory and checks the process's exact peak RSS (runMeasured):
// a 2 MB gzip holding one 2 GiB string and a gzip of 10 GB of spaces are
// dead-lettered with a limit error naming the spec key to raise, while
// 10 million gzipped NDJSON rows and a 1 GB NDJSON object load every row;
// none of them takes the process to 512 MiB.
func TestPeakRSSStaysUnder512MiB(t *testing.T) {
	t.Run("the measurement sees a child's 600 MiB", func(t *testing.T) {
		// A check of measure itself: a process that fills 600 MiB
		// measures at least that, so checkRSS would fail it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, self)
		cmd.Env = append(os.Environ(), rssProbeEnv+"=600")
		m := measure(ctx, t, cmd)
		if m.code != 0 {
			t.Fatalf("the probe exited %d:\n%s", m.code, m.stderr)
		}
		if m.maxRSS < 600<<20 || m.maxRSS < rssLimit {
			t.Errorf("the probe filled 600 MiB but measured %.1f MiB", float64(m.maxRSS)/(1<<20))
		}
	})

	t.Run("a 2 GiB string in a 2 MB gzip is dead-lettered naming the field limit", func(t *testing.T) {
		dataDir := t.TempDir()
		const name = "big-string.ndjson.gz"
		size := writeInput(t, dataDir, name, gzip.DefaultCompression, func(w io.Writer) error {
			if _, err := io.WriteString(w, `{"id":1,"v":"`); err != nil {
				return err
			}
			if err := repeat(w, 'x', 2<<30); err != nil {
				return err
			}
			_, err := io.WriteString(w, "\"}\n")
			return err
		})
		if size > 4<<20 {
			t.Fatalf("the gzip is %d bytes, want about 2 MB", size)
		}
		m := runMeasured(t, dataDir)
		if m.code == 0 {
			t.Fatalf("run --once exited 0 on a 2 GiB string:\n%s\n%s", m.stdout, tail(m.stderr, 3000))
		}
		dl := onlyDeadLetter(t, dataDir, "in/"+name)
		if !strings.Contains(dl, "limits.max_field_bytes") && !strings.Contains(dl, "limits.max_record_bytes") {
			t.Errorf("the dead letter's reason does not name limits.max_field_bytes or limits.max_record_bytes:\n%s", dl)
		}
		if n := count(t, dataDir, "select count(*) from rows"); n != "0" {
			t.Errorf("rows = %s, want 0", n)
		}
		checkRSS(t, m)
	})

	t.Run("a gzip of 10 GB of spaces is dead-lettered naming the object limit", func(t *testing.T) {
		dataDir := t.TempDir()
		const name = "spaces.json.gz"
		size := writeInput(t, dataDir, name, gzip.BestSpeed, func(w io.Writer) error {
			return repeat(w, ' ', 10e9)
		})
		if size > 16<<20 {
			t.Fatalf("the gzip is %d bytes, want about 10 MB", size)
		}
		m := runMeasured(t, dataDir)
		if m.code == 0 {
			t.Fatalf("run --once exited 0 on 10 GB of spaces:\n%s\n%s", m.stdout, tail(m.stderr, 3000))
		}
		dl := onlyDeadLetter(t, dataDir, "in/"+name)
		if !strings.Contains(dl, "limits.max_object_bytes") {
			t.Errorf("the dead letter's reason does not name limits.max_object_bytes:\n%s", dl)
		}
		checkRSS(t, m)
	})

	t.Run("10 million gzipped NDJSON rows load", func(t *testing.T) {
		dataDir := t.TempDir()
		const rows = 10_000_000
		writeInput(t, dataDir, "rows.ndjson.gz", gzip.BestCompression, func(w io.Writer) error {
			return writeRows(w, rows, "x")
		})
		// PostgreSQL: it loads the 10M rows in about half the time the
		// embedded SQLite takes here (28 s against 54 s on 2 cores).
		wh, _, _ := pgSchema(t)
		env := []string{"SLUICE_WAREHOUSE=" + wh}
		m := runMeasured(t, dataDir, env...)
		if m.code != 0 {
			t.Fatalf("run --once: exit %d\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
		}
		if n := count(t, dataDir, "select count(*) from rows", env...); n != strconv.Itoa(rows) {
			t.Errorf("rows = %s, want %d", n, rows)
		}
		if s, want := count(t, dataDir, "select sum(id) from rows", env...), strconv.FormatInt(rows*(rows-1)/2, 10); s != want {
			t.Errorf("sum(id) = %s, want %s (every id in [0, %d) once)", s, want, rows)
		}
		checkRSS(t, m)
	})

	t.Run("a 1 GB NDJSON object loads", func(t *testing.T) {
		// The embedded SQLite warehouse, whose page cache and statements
		// live in the sluice process, so they count in its RSS.
		dataDir := t.TempDir()
		// About 206 bytes a record: 5M records make 1.03 GB.
		const rows = 5_000_000
		pad := strings.Repeat("p", 190)
		size := writeInput(t, dataDir, "big.ndjson", 0, func(w io.Writer) error {
			return writeRows(w, rows, pad)
		})
		if size < 1e9 {
			t.Fatalf("the object is %d bytes, want at least 1e9", size)
		}
		m := runMeasured(t, dataDir)
		if m.code != 0 {
			t.Fatalf("run --once: exit %d\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
		}
		if n := count(t, dataDir, "select count(*) from rows"); n != strconv.Itoa(rows) {
			t.Errorf("rows = %s, want %d", n, rows)
		}
		checkRSS(t, m)
	})
}

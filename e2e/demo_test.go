package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestDemoLoadsOneHundredPostsAndARerunKeepsOneHundred(t *testing.T) {
	dd := "--data-dir=" + t.TempDir()
	r := mustRun(t, nil, "demo", dd)
	for _, want := range []string{"landed", "loaded", "100 row(s)", "sluice"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	count := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select count(*) from posts")
	if count.stdout != "100\n" {
		t.Fatalf("count after first demo = %q, want exactly \"100\\n\"", count.stdout)
	}
	mustRun(t, nil, "demo", dd)
	count = mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select count(*) from posts")
	if count.stdout != "100\n" {
		t.Fatalf("count after second demo = %q, want exactly \"100\\n\"", count.stdout)
	}
	ls := mustRun(t, nil, "ls", dd, "raw/posts/")
	lines := strings.Fields(ls.stdout)
	if len(lines) != 2 {
		t.Fatalf("ls raw/posts/ listed %d objects, want 2:\n%s", len(lines), ls.stdout)
	}
	for _, k := range lines {
		if !strings.HasPrefix(k, "raw/posts/dt=") || !strings.HasSuffix(k, ".json") {
			t.Errorf("unexpected raw key %q", k)
		}
	}
	// Columns as the reference pipeline names them.
	row := mustRun(t, nil, "sql", dd, "--format=csv", "select id, userid, title from posts where id = 1")
	if !strings.HasPrefix(row.stdout, "id,userid,title\n1,1,sunt aut facere") {
		t.Fatalf("post 1 = %q", row.stdout)
	}
}

func TestDemoLoadsIntoARealPostgresTableWithAPrimaryKeyOnID(t *testing.T) {
	whURL, schema, _ := pgSchema(t)
	env := []string{"SLUICE_WAREHOUSE=" + whURL}
	mustRun(t, env, "demo", "--data-dir="+t.TempDir())
	psql := func(q string) string {
		out, err := exec.CommandContext(context.Background(), "psql", postgresURL(), "-qAtc", q).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %q: %v\n%s", q, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := psql("select count(*) from " + schema + ".posts"); got != "100" {
		t.Fatalf("psql count = %q, want 100", got)
	}
	cols := psql("select string_agg(column_name || ':' || data_type, ',' order by ordinal_position) from information_schema.columns where table_schema = '" + schema + "' and table_name = 'posts'")
	// merge keeps each row's object version in a hidden column, so that an
	// older version never overwrites a newer one.
	if cols != "id:bigint,userid:bigint,title:text,body:text,_sluice_version:text" {
		t.Fatalf("posts columns = %q", cols)
	}
	pk := psql("select string_agg(a.attname, ',') from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = '" + schema + ".posts'::regclass and i.indisprimary")
	if pk != "id" {
		t.Fatalf("primary key of posts = %q, want id", pk)
	}
}

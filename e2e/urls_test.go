package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/queue/rabbitqueue"
	"github.com/sluicehq/sluice/queue/sqsqueue/sqsfake"
	"github.com/sluicehq/sluice/store/storetest"
)

// These tests prove issue 7's "must show 2": the blog-posts pipeline runs
// unchanged on real infrastructure — an S3 store (versitygw), RabbitMQ or
// SQS (the local fake), PostgreSQL for the warehouse and for the state —
// with only its URLs changed, and so does `sluice demo`.

// amqpURL is the RabbitMQ broker of the tests (the test script starts it).
func amqpURL() string {
	if u := os.Getenv("SLUICE_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// rabbitTopic deletes, now and at the end of the test, what sluice creates on
// the broker for pipeline name (see queue/rabbitqueue's package doc): the
// exchange, its log and dead-letter streams, and per subscription a queue and
// a ":backfilled" exchange. rabbitqueue has no delete operation of its own,
// so the test uses the AMQP client. It fails the test when the broker is not
// reachable.
func rabbitTopic(t *testing.T, name string, subs ...string) {
	t.Helper()
	c, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Fatalf("RabbitMQ at %s is not reachable (run ./scripts/test.sh, which starts it, or set SLUICE_TEST_AMQP_URL): %v", redacted(amqpURL()), err)
	}
	c.Close()
	deleteRabbitTopic(t, name, subs)
	t.Cleanup(func() { deleteRabbitTopic(t, name, subs) })
}

func deleteRabbitTopic(t *testing.T, name string, subs []string) {
	c, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Errorf("delete the RabbitMQ objects of %s: %v", name, err)
		return
	}
	defer c.Close()
	o := rabbitqueue.Options{Exchange: "sluice." + name} // as internal/engine names it
	ex, log, dlq, _ := o.Names("")
	del := func(f func(ch *amqp.Channel) error) {
		ch, err := c.Channel()
		if err != nil {
			t.Errorf("delete the RabbitMQ objects of %s: %v", name, err)
			return
		}
		defer ch.Close()
		if err := f(ch); err != nil {
			t.Errorf("delete the RabbitMQ objects of %s: %v", name, err)
		}
	}
	for _, s := range subs {
		_, _, _, q := o.Names(s)
		del(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		del(func(ch *amqp.Channel) error { return ch.ExchangeDelete(q+":backfilled", false, false) })
	}
	for _, q := range []string{log, dlq} {
		del(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	del(func(ch *amqp.Channel) error { return ch.ExchangeDelete(ex, false, false) })
}

// rabbitReady returns the ready messages of a queue sluice made for
// pipeline name's subscription sub, failing the test if it does not exist.
func rabbitReady(t *testing.T, name, sub string) int {
	t.Helper()
	c, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	_, _, _, qn := rabbitqueue.Options{Exchange: "sluice." + name}.Names(sub)
	q, err := ch.QueueDeclarePassive(qn, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		t.Fatalf("the RabbitMQ queue %s of subscription %s: %v", qn, sub, err)
	}
	return q.Messages
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// stateSchema returns a PostgreSQL state URL on a fresh schema (dropped at
// the end of the test) and the schema's name.
func stateSchema(t *testing.T, conn *pgx.Conn, whSchema string) (string, string) {
	schema := whSchema + "_state"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(postgresURL(), "?") {
		sep = "&"
	}
	return postgresURL() + sep + "schema=" + schema, schema
}

// postsAPI serves the demo's local copy of JSONPlaceholder's /posts.
func postsAPI(t *testing.T) (apiURL string, posts []map[string]any, requests *atomic.Int64) {
	t.Helper()
	body, err := os.ReadFile("../internal/cli/demodata/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &posts); err != nil || len(posts) != 100 {
		t.Fatalf("demodata/posts.json: %d posts, %v; want 100", len(posts), err)
	}
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/posts" {
			t.Errorf("API request %s %s, want GET /posts", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/posts", posts, requests
}

// postsSpec is examples/posts/pipeline.yaml with its API URL pointed at
// apiURL and, when name is not "", the pipeline renamed.
func postsSpec(t *testing.T, apiURL, name, extra string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/posts/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, new := range map[string]string{
		"url: https://jsonplaceholder.typicode.com/posts": "url: " + apiURL,
		"\nname: posts\n": "\nname: " + name + "\n" + extra,
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("examples/posts/pipeline.yaml no longer contains %q", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	return s
}

// postsChecks are the assertions after each run of the posts pipeline.
type postsChecks struct {
	conn              *pgx.Conn
	whURL, whSchema   string
	stateSchema, name string
	dataDir           string
	env               []string
	v                 *storetest.Versitygw
	bucket            string
	posts             []map[string]any
	queueShown        string // the queue URL the state records (password redacted)
	wantObjects       int
}

// check asserts: exactly 100 rows, equal to the API's posts; the ledger
// holds exactly the objects in the bucket; the state went to PostgreSQL
// (the pipeline's settings are in its schema; `run --once` runs sources
// without taking their leases, so the leases table stays empty here) and no
// state.db or warehouse.db exists in the data dir.
func (c *postsChecks) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var n, ids, sum int64
	if err := c.conn.QueryRow(ctx, "select count(*), count(distinct id), coalesce(sum(id), 0) from "+c.whSchema+".posts").Scan(&n, &ids, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 100 || ids != 100 || sum != 5050 {
		t.Fatalf("posts in PostgreSQL: %d rows, %d distinct ids, sum(id) %d; want exactly 100 rows, ids 1..100", n, ids, sum)
	}
	for _, p := range []map[string]any{c.posts[0], c.posts[99]} {
		var userid int64
		var title, body string
		if err := c.conn.QueryRow(ctx, "select userid, title, body from "+c.whSchema+".posts where id = $1", int64(p["id"].(float64))).Scan(&userid, &title, &body); err != nil {
			t.Fatalf("post %v: %v", p["id"], err)
		}
		if userid != int64(p["userId"].(float64)) || title != p["title"] || body != p["body"] {
			t.Errorf("post %v in PostgreSQL = (%d, %q, %q), want the API's %v", p["id"], userid, title, body, p)
		}
	}
	if got := count(t, c.dataDir, "select count(*) from posts", append(c.env, "SLUICE_WAREHOUSE="+c.whURL)...); got != "100" {
		t.Errorf("sluice sql count = %s, want 100", got)
	}

	// The ledger holds exactly the objects in the bucket (key and ETag).
	out, err := c.v.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), Prefix: aws.String("raw/posts/")})
	if err != nil {
		t.Fatal(err)
	}
	var inBucket, inLedger []string
	for _, o := range out.Contents {
		inBucket = append(inBucket, aws.ToString(o.Key)+" "+strings.Trim(aws.ToString(o.ETag), `"`))
	}
	rows, err := c.conn.Query(ctx, "select object_key, etag, rows from "+c.whSchema+"._sluice_ledger where table_name = 'posts' order by object_key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, e string
		var n int64
		if err := rows.Scan(&k, &e, &n); err != nil {
			t.Fatal(err)
		}
		if n != 100 {
			t.Errorf("ledger: object %s loaded %d rows, want 100", k, n)
		}
		inLedger = append(inLedger, k+" "+strings.Trim(e, `"`))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(inBucket)
	if len(inBucket) != c.wantObjects || !slices.Equal(inBucket, inLedger) {
		t.Errorf("objects in the bucket %v, in the ledger %v: want the same %d", inBucket, inLedger, c.wantObjects)
	}

	// The state is in PostgreSQL.
	var pipelineName, queueSetting string
	if err := c.conn.QueryRow(ctx, "select (select v from "+c.stateSchema+".kv where k = 'pipeline'), (select v from "+c.stateSchema+".kv where k = 'queue')").Scan(&pipelineName, &queueSetting); err != nil {
		t.Fatalf("settings in the state schema %s: %v", c.stateSchema, err)
	}
	if pipelineName != c.name {
		t.Errorf("setting pipeline = %q in PostgreSQL, want %q", pipelineName, c.name)
	}
	if queueSetting != c.queueShown {
		t.Errorf("setting queue = %q in PostgreSQL, want %q (its URL, without a password)", queueSetting, c.queueShown)
	}
	for _, f := range []string{"state.db", "warehouse.db"} {
		if _, err := os.Stat(filepath.Join(c.dataDir, f)); !os.IsNotExist(err) {
			t.Errorf("the data dir has %s (stat: %v): the state and warehouse must be PostgreSQL's only", f, err)
		}
	}
}

// runPostsTwice runs the pipeline twice with `run --once` and checks after
// each run.
func runPostsTwice(t *testing.T, spec string, env []string, c *postsChecks, requests *atomic.Int64, drained func(t *testing.T)) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(f, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		r := sluice(t, env, "run", "--once", "--max-wait=1m", "--data-dir="+c.dataDir, "-f", f)
		if r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s%s", i, r.code, r.stdout, tail(r.stderr, 4000))
		}
		if got := requests.Load(); got != int64(i) {
			t.Errorf("API requests after run %d = %d, want %d", i, got, i)
		}
		c.wantObjects = i // each run lands one object: the same posts, merged on id
		c.check(t)
		drained(t)
	}
}

func TestPostsOnVersitygwRabbitMQAndPostgresWithOnlyURLsChanged(t *testing.T) {
	name := fmt.Sprintf("urlsrabbit%d", rand.IntN(1e9)) // its exchange and queues are the test's own
	rabbitTopic(t, name, "load-posts")
	v := storetest.StartVersitygw(t)
	storeURL := v.Bucket(t, "posts")
	whURL, whSchema, conn := pgSchema(t)
	stURL, stSchema := stateSchema(t, conn, whSchema)
	apiURL, posts, requests := postsAPI(t)
	// The URLs in the spec file this time (the SQS test sets them by
	// environment).
	urls := fmt.Sprintf("store: %q\nqueue: %q\nwarehouse: %q\nstate: %q\n", storeURL, amqpURL(), whURL, stURL)
	spec := postsSpec(t, apiURL, name, urls)
	c := &postsChecks{conn: conn, whURL: whURL, whSchema: whSchema, stateSchema: stSchema, name: name, dataDir: t.TempDir(),
		env: v.Env(), v: v, bucket: "posts", posts: posts, queueShown: redacted(amqpURL())}
	runPostsTwice(t, spec, v.Env(), c, requests, func(t *testing.T) {
		if n := rabbitReady(t, name, "load-posts"); n != 0 {
			t.Errorf("RabbitMQ queue of load-posts holds %d messages after run --once, want 0 (all acked)", n)
		}
	})
}

func TestPostsOnVersitygwSQSAndPostgresWithOnlyURLsChanged(t *testing.T) {
	fake := sqsfake.Start(t)
	v := storetest.StartVersitygw(t)
	storeURL := v.Bucket(t, "posts")
	whURL, whSchema, conn := pgSchema(t)
	stURL, stSchema := stateSchema(t, conn, whSchema)
	apiURL, posts, requests := postsAPI(t)
	prefix := "urls-posts"
	spec := postsSpec(t, apiURL, "posts", "") // the example as it is, but for the API's URL
	queueURL := "sqs://" + prefix + "?region=us-east-1&endpoint=" + fake.URL + "&poll_wait=1s"
	env := append(v.Env(),
		"SLUICE_STORE="+storeURL,
		"SLUICE_QUEUE="+queueURL,
		"SLUICE_WAREHOUSE="+whURL,
		"SLUICE_STATE="+stURL)
	c := &postsChecks{conn: conn, whURL: whURL, whSchema: whSchema, stateSchema: stSchema, name: "posts", dataDir: t.TempDir(),
		env: env, v: v, bucket: "posts", posts: posts, queueShown: queueURL}
	client := sqsClient(fake)
	runPostsTwice(t, spec, env, c, requests, func(t *testing.T) {
		// sqsqueue makes one queue per subscription and one for the
		// queue's own dead letters; both are empty once run --once is done.
		want := []string{prefix + "-load-posts", prefix + "_dead-letters"}
		if names := fake.QueueNames(); !slices.Equal(names, want) {
			t.Fatalf("SQS queues = %v, want %v", names, want)
		}
		for _, name := range want {
			q, err := client.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			attrs, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
				AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
			if err != nil {
				t.Fatal(err)
			}
			if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
				t.Errorf("SQS queue %s still holds messages after run --once: %v", name, attrs.Attributes)
			}
		}
	})
	if n := fake.Calls("SendMessage"); n != 2 {
		t.Errorf("SQS SendMessage calls = %d, want 2: one event per landed object", n)
	}
	if n := fake.Calls("DeleteMessage"); n != 2 {
		t.Errorf("SQS DeleteMessage calls = %d, want 2: each event acked once, after its commit", n)
	}
}

// `sluice demo` with the queue, state and warehouse moved by environment
// variables alone: RabbitMQ and PostgreSQL. The demo's pipeline is named
// "demo", so its RabbitMQ objects (exchange sluice.demo) are not unique to
// the test: they are deleted before and after it.
func TestDemoOnRabbitMQAndPostgresByEnvironment(t *testing.T) {
	rabbitTopic(t, "demo", "load-posts", "job-hydropower")
	whURL, whSchema, conn := pgSchema(t)
	stURL, stSchema := stateSchema(t, conn, whSchema)
	env := []string{"SLUICE_QUEUE=" + amqpURL(), "SLUICE_STATE=" + stURL, "SLUICE_WAREHOUSE=" + whURL}
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		r := mustRun(t, env, "demo", dd)
		for _, want := range []string{
			"on the URLs the environment sets and embedded defaults\n",
			"  store       file://" + filepath.Join(dataDir, "lake") + " (embedded default)\n",
			"  queue       " + redacted(amqpURL()) + " (from SLUICE_QUEUE)\n",
			"  warehouse   " + redacted(whURL) + " (from SLUICE_WAREHOUSE)\n",
			"  state       " + redacted(stURL) + " (from SLUICE_STATE)\n",
			"posts now   100 row(s)",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("demo %d output lacks %q:\n%s", i, want, r.stdout)
			}
		}
		// The commands it suggests read the warehouse and state the demo
		// recorded, and only ls reads the store: nothing needs the
		// variables (TestSQLAfterAPostgresDemoReadsPostgresWithoutTheVariable).
		if strings.Contains(r.stdout, "with the same") {
			t.Errorf("demo %d asks for variables its suggested commands do not need:\n%s", i, r.stdout)
		}
		if strings.Contains(r.stdout, "on embedded defaults") {
			t.Errorf("demo %d claims to run on embedded defaults:\n%s", i, r.stdout)
		}
		if pass, ok := mustParse(t, amqpURL()).User.Password(); ok && pass != "" && strings.Contains(r.stdout, ":"+pass+"@") {
			t.Errorf("demo %d prints the queue's password:\n%s", i, r.stdout)
		}
		if got := count(t, dataDir, "select count(*) from posts", env...); got != "100" {
			t.Errorf("after demo %d, sluice sql count = %s, want 100", i, got)
		}
		var n, ids int64
		if err := conn.QueryRow(ctx, "select count(*), count(distinct id) from "+whSchema+".posts").Scan(&n, &ids); err != nil {
			t.Fatal(err)
		}
		if n != 100 || ids != 100 {
			t.Errorf("after demo %d, PostgreSQL holds %d posts (%d distinct ids), want 100", i, n, ids)
		}
		var ledger int64
		if err := conn.QueryRow(ctx, "select count(*) from "+whSchema+"._sluice_ledger where table_name = 'posts'").Scan(&ledger); err != nil {
			t.Fatal(err)
		}
		if ledger != int64(i) {
			t.Errorf("after demo %d, the ledger holds %d posts objects, want %d", i, ledger, i)
		}
		var runs, pipelineName string
		if err := conn.QueryRow(ctx, "select (select string_agg(state, ',') from "+stSchema+".job_runs where rule = 'hydropower'), (select v from "+stSchema+".kv where k = 'pipeline')").Scan(&runs, &pipelineName); err != nil {
			t.Fatalf("the state schema %s: %v", stSchema, err)
		}
		// The second demo's input is unchanged: the run is deduplicated
		// against the first, through the state in PostgreSQL.
		if runs != "SUCCEEDED" || pipelineName != "demo" {
			t.Errorf("after demo %d, state in PostgreSQL: hydropower runs %q, pipeline %q; want one SUCCEEDED run of demo", i, runs, pipelineName)
		}
		if jobs := mustRun(t, env, "jobs", dd); !strings.Contains(jobs.stdout, "SUCCEEDED") {
			t.Errorf("sluice jobs with SLUICE_STATE:\n%s", jobs.stdout)
		}
		for _, f := range []string{"state.db", "warehouse.db"} {
			if _, err := os.Stat(filepath.Join(dataDir, f)); !os.IsNotExist(err) {
				t.Errorf("the data dir has %s (stat: %v): the state and warehouse must be PostgreSQL's only", f, err)
			}
		}
		for _, sub := range []string{"load-posts", "job-hydropower"} {
			if n := rabbitReady(t, "demo", sub); n != 0 {
				t.Errorf("after demo %d, RabbitMQ queue of %s holds %d messages, want 0", i, sub, n)
			}
		}
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

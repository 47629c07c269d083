package storetest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/testsvc"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of the versitygw servers tests start.
const (
	S3Access = "sluicetest"
	S3Secret = "sluicetestsecret"
	S3Region = "us-east-1"
)

// Versitygw is a real S3-compatible server (versitygw's posix backend) a
// test started on a free loopback port.
type Versitygw struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the posix root: bucket/key files
	Client   *s3.Client
}

// TB is what StartVersitygw and Bucket need of a test: a *testing.T, or a
// program's stand-in for one (the chaos suite, ./chaos).
type TB = testsvc.TB

// StartVersitygw starts versitygw with extra global flags (for example its
// NATS event notification flags) and stops it at the end of the test. A
// missing binary fails the test with what to run.
func StartVersitygw(t TB, flags ...string) *Versitygw {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("versitygw is not installed: run ./scripts/test.sh, which installs it (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	args := append([]string{"--port", addr, "--access", S3Access, "--secret", S3Secret}, flags...)
	cmd := exec.Command(bin, append(args, "posix", dir)...)
	out, _ := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); out.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("versitygw did not listen on %s in 20s:\n%s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	endpoint := "http://" + addr
	return &Versitygw{Endpoint: endpoint, Dir: dir, Client: s3.New(s3.Options{
		Region:       S3Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(S3Access, S3Secret, ""),
	})}
}

// Bucket creates a bucket and returns its sluice store URL.
func (v *Versitygw) Bucket(t TB, name string) string {
	t.Helper()
	if _, err := v.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return "s3://" + name + "?endpoint=" + v.Endpoint + "&region=" + S3Region + "&use_path_style=true"
}

// Env is the environment an S3 client of this server needs.
func (v *Versitygw) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + S3Access, "AWS_SECRET_ACCESS_KEY=" + S3Secret, "AWS_REGION=" + S3Region}
}

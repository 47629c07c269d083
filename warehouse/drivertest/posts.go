package drivertest

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse"
)

// Posts is the table the load benchmarks write: the shape of
// JSONPlaceholder's /posts, sluice's reference pipeline (userid bigint,
// id bigint primary key, title text, body text).
var Posts = warehouse.Table{Name: "posts", Columns: []schema.Column{
	{Name: "userid", Type: schema.BigInt}, {Name: "id", Type: schema.BigInt},
	{Name: "title", Type: schema.Text}, {Name: "body", Type: schema.Text},
}, PrimaryKey: []string{"id"}}

// PostsDDL creates Posts (with its primary key when keyed) for a
// reference tool (psql, sqlite3) that loads the same rows.
func PostsDDL(keyed bool) string {
	if keyed {
		return "CREATE TABLE posts (userid bigint, id bigint NOT NULL, title text, body text, PRIMARY KEY (id))"
	}
	return "CREATE TABLE posts (userid bigint, id bigint, title text, body text)"
}

var words = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor
	incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco
	laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse
	cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia
	deserunt mollit anim id est laborum quia et suscipit recusandae consequuntur expedita`)

// splitmix64 is a small deterministic generator of the texts.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// text appends n pseudo-random words (seeded by seed), with a line break
// every 10 words as in the posts' bodies.
func text(dst []byte, seed uint64, n int) []byte {
	for k := range n {
		seed = splitmix64(seed)
		if k > 0 {
			if k%10 == 0 {
				dst = append(dst, '\n')
			} else {
				dst = append(dst, ' ')
			}
		}
		dst = append(dst, words[seed%uint64(len(words))]...)
	}
	return dst
}

// postRow appends post id's values (deterministic: the same id gives
// the same row; version varies the texts, for updates) to b.
func postRow(b *schema.Batch, id int64, version uint64, buf []byte) []byte {
	seed := uint64(id)*31 + version
	b.Vecs[0].AppendInt(id/10 + 1)
	b.Vecs[1].AppendInt(id)
	buf = text(buf[:0], seed, 6+int(splitmix64(seed)%5))
	b.Vecs[2].AppendText(buf)
	buf = text(buf[:0], seed^0xabcdef, 36+int(splitmix64(seed+1)%10))
	b.Vecs[3].AppendText(buf)
	return buf
}

// PostsBatches returns batches of size rows holding the posts with the
// given ids (record numbers from 1), about 330 bytes of values per row
// (some 370 as NDJSON). version varies the texts.
func PostsBatches(ids []int64, size int, version uint64) []*schema.Batch {
	var out []*schema.Batch
	var buf []byte
	for i := 0; i < len(ids); i += size {
		b := schema.NewBatch(Posts.Columns)
		for k, id := range ids[i:min(i+size, len(ids))] {
			buf = postRow(b, id, version, buf)
			b.EndRow(int64(i+k+1), int64(i+k+1))
		}
		out = append(out, b)
	}
	return out
}

// Span returns the ids from, from+1, ..., from+n-1.
func Span(from int64, n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = from + int64(i)
	}
	return ids
}

// Batches streams held batches (again and again: each Reader starts at
// the first).
type Batches []*schema.Batch

// Reader returns a reader of the batches.
func (bs Batches) Reader() schema.Reader { return &batchesReader{bs: bs} }

// Rows counts the rows of the batches.
func (bs Batches) Rows() int64 {
	var n int64
	for _, b := range bs {
		n += int64(b.Len())
	}
	return n
}

type batchesReader struct {
	bs Batches
	i  int
}

func (r *batchesReader) Next(ctx context.Context) (*schema.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.i == len(r.bs) {
		return nil, io.EOF
	}
	r.i++
	return r.bs[r.i-1], nil
}

func (r *batchesReader) Close() error { return nil }

// WriteCSV writes the rows of batches of Posts as CSV without a header
// (RFC 4180: fields with quotes, commas or line breaks quoted), the input
// of the reference tools.
func WriteCSV(w io.Writer, bs Batches) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for _, b := range bs {
		for i := range b.Len() {
			line = line[:0]
			for j := range b.Vecs {
				if j > 0 {
					line = append(line, ',')
				}
				v := &b.Vecs[j]
				if v.Type.IsInt() {
					line = strconv.AppendInt(line, v.Int[i], 10)
					continue
				}
				s := v.TextBytes(i)
				if !strings.ContainsAny(string(s), "\",\n\r") {
					line = append(line, s...)
					continue
				}
				line = append(line, '"')
				for _, c := range s {
					if c == '"' {
						line = append(line, '"')
					}
					line = append(line, c)
				}
				line = append(line, '"')
			}
			line = append(line, '\n')
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

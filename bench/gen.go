package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The inputs are generated, never downloaded, and the same on every run:
// every posts row is a pure function of its id and a variant (0 for the
// rows the timed loads write, 1 for the older versions pre-loaded to make
// key conflicts), seeded from both, so any subset of ids gives the same
// bytes whatever order it is written in.

// words are the vocabulary of titles and bodies (JSONPlaceholder's lorem).
var words = []string{
	"sunt", "aut", "facere", "repellat", "provident", "occaecati", "excepturi", "optio", "reprehenderit",
	"quia", "et", "suscipit", "recusandae", "consequuntur", "expedita", "cum", "molestiae", "ut", "quas",
	"totam", "nostrum", "rerum", "est", "autem", "rem", "eveniet", "architecto", "qui", "esse", "tempore",
	"vitae", "sequi", "sint", "nihil", "dolor", "beatae", "ea", "dolores", "neque", "fugiat", "blanditiis",
	"voluptate", "porro", "vel", "reiciendis", "aperiam", "non", "debitis", "possimus", "nisi", "nulla",
	"odit", "magnam", "natus", "accusamus", "numquam", "dolorem", "ipsam", "voluptatem", "sed", "quo",
	"iure", "exercitationem", "ratione", "eum", "alias", "minima", "ipsum", "modi", "magni", "doloribus",
	"harum", "distinctio", "labore", "laborum", "omnis", "pariatur", "officia", "adipisci", "quaerat",
}

// post is one posts-shaped row.
type post struct {
	userID, id  int64
	title, body string
}

// makePost returns row id of the given variant. Titles are about 55
// characters and bodies four lines of about 60, so a row is about 372
// bytes of NDJSON, like the 372 MB for a million rows.
func makePost(id int64, variant uint64) post {
	var r rand.PCG
	r.Seed(uint64(id), 0x5111ce00+variant)
	intn := func(n int) int { return int(r.Uint64() % uint64(n)) }
	buf := make([]byte, 0, 384)
	sentence := func(min int) {
		start := len(buf)
		for len(buf)-start < min {
			if len(buf) > start {
				buf = append(buf, ' ')
			}
			buf = append(buf, words[intn(len(words))]...)
		}
	}
	sentence(47 + intn(20))
	titleEnd := len(buf)
	for i := range 4 {
		if i > 0 {
			buf = append(buf, '\n')
		}
		sentence(51 + intn(20))
	}
	s := string(buf)
	return post{userID: (id-1)/10 + 1, id: id, title: s[:titleEnd], body: s[titleEnd:]}
}

// appendNDJSON appends p as one JSON line. Titles and bodies hold only
// lower-case words, spaces and newlines, so \n is the only escape needed.
func appendNDJSON(b []byte, p post) []byte {
	b = append(b, `{"userId":`...)
	b = strconv.AppendInt(b, p.userID, 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, p.id, 10)
	b = append(b, `,"title":"`...)
	b = append(b, p.title...)
	b = append(b, `","body":"`...)
	for i := 0; i < len(p.body); i++ {
		if p.body[i] == '\n' {
			b = append(b, `\n`...)
		} else {
			b = append(b, p.body[i])
		}
	}
	return append(b, "\"}\n"...)
}

// appendCSV appends p as one CSV record in the column order of the
// tables (userid, id, title, body); the body is quoted since it holds
// newlines, the title for symmetry. No header: both psql's \copy and
// sqlite3's .import into an existing table read every line as data.
func appendCSV(b []byte, p post) []byte {
	b = strconv.AppendInt(b, p.userID, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.id, 10)
	b = append(b, `,"`...)
	b = append(b, p.title...)
	b = append(b, `","`...)
	b = append(b, p.body...)
	return append(b, "\"\n"...)
}

// postsSet is one generated input: the same rows as objects NDJSON files
// (each a slice of the ids in order) and, when asked for, one CSV file.
type postsSet struct {
	objects []string // NDJSON files
	csv     string   // "" if not written
	rows    int64
	bytes   int64 // NDJSON bytes
	chars   int64 // sum of len(title)+len(body): shows which versions a table holds
}

// writePosts writes the rows whose ids keep selects, from 1 to n, of
// variant as nObjects NDJSON files of near-equal row counts under dir
// (and as dir/all.csv if withCSV), and sets every file's modification
// time to mtime: a local store takes an object's event time from it, and
// merge orders versions by event time, so the timed objects must be newer
// than the pre-loaded ones.
func writePosts(dir string, n int64, keep func(id int64) bool, variant uint64, nObjects int, withCSV bool, mtime time.Time) (postsSet, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return postsSet{}, err
	}
	var ids []int64
	for id := int64(1); id <= n; id++ {
		if keep == nil || keep(id) {
			ids = append(ids, id)
		}
	}
	set := postsSet{rows: int64(len(ids))}
	var csvW *bufio.Writer
	var csvF *os.File
	if withCSV {
		set.csv = filepath.Join(dir, "all.csv")
		f, err := os.Create(set.csv)
		if err != nil {
			return set, err
		}
		csvF, csvW = f, bufio.NewWriterSize(f, 1<<20)
	}
	var line, rec []byte
	per := (len(ids) + nObjects - 1) / nObjects
	for o := 0; o < nObjects; o++ {
		lo, hi := o*per, min((o+1)*per, len(ids))
		if lo >= hi {
			break
		}
		name := filepath.Join(dir, fmt.Sprintf("part-%05d.ndjson", o))
		var buf bytes.Buffer
		for _, id := range ids[lo:hi] {
			p := makePost(id, variant)
			set.chars += int64(len(p.title) + len(p.body))
			line = appendNDJSON(line[:0], p)
			buf.Write(line)
			if csvW != nil {
				rec = appendCSV(rec[:0], p)
				if _, err := csvW.Write(rec); err != nil {
					return set, err
				}
			}
		}
		set.bytes += int64(buf.Len())
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return set, err
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			return set, err
		}
		set.objects = append(set.objects, name)
	}
	if csvW != nil {
		if err := csvW.Flush(); err != nil {
			return set, err
		}
		if err := csvF.Close(); err != nil {
			return set, err
		}
	}
	return set, nil
}

// writeBigNDJSON writes posts rows from id 1 up into one NDJSON file until
// it holds at least size bytes, and returns the row count.
func writeBigNDJSON(path string, size int64, mtime time.Time) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	var n, id int64
	for n < size {
		id++
		line = appendNDJSON(line[:0], makePost(id, 0))
		w.Write(line)
		n += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return id, os.Chtimes(path, mtime, mtime)
}

// hydropowerCSV is the hydropower reference data (4,176 rows), a copy of
// shared/data/hydropower/hydropower-consumption.csv.
//
//go:embed testdata/hydropower-consumption.csv
var hydropowerCSV []byte

// writeHydropower writes the hydropower CSV with its data rows repeated
// copies times under one header, and returns the row count. Repetition
// keeps the data realistic (the same entities, codes, years and values,
// nulls included) and the sums checkable.
func writeHydropower(path string, copies int, mtime time.Time) (int64, error) {
	nl := bytes.IndexByte(hydropowerCSV, '\n')
	header, body := hydropowerCSV[:nl+1], hydropowerCSV[nl+1:]
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body[:len(body):len(body)], '\n')
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(header)
	for range copies {
		w.Write(body)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return int64(copies) * int64(bytes.Count(body, []byte{'\n'})), os.Chtimes(path, mtime, mtime)
}

// hydropowerCopyBytes is the size of one copy of the hydropower rows.
func hydropowerCopyBytes() int64 {
	return int64(len(hydropowerCSV) - bytes.IndexByte(hydropowerCSV, '\n') - 1)
}

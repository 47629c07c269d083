package format

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	pformat "github.com/parquet-go/parquet-go/format"
)

// This file builds Parquet files byte by byte — page headers, pages and
// footer as the test states them — so that a test can say exactly which
// size or count of a file lies, where parquet-go's writer would only
// write the truth.

// craftPage is one page of a crafted column chunk: its header (whose
// CompressedPageSize is set from data when left 0) and its bytes.
type craftPage struct {
	h    pformat.PageHeader
	data []byte
}

// craftColumn is a leaf column of a crafted file: its schema element and
// the pages of its one column chunk.
type craftColumn struct {
	se    pformat.SchemaElement
	codec pformat.CompressionCodec
	pages []craftPage
}

// craftParquet writes a file of one row group of rows rows holding cols;
// edit, when not nil, may change the footer before it is written.
func craftParquet(t testing.TB, rows int64, cols []craftColumn, edit func(*pformat.FileMetaData)) []byte {
	t.Helper()
	var proto thrift.CompactProtocol
	buf := bytes.NewBufferString("PAR1")
	md := pformat.FileMetaData{
		Version: 1,
		Schema:  thrift.Slice[pformat.SchemaElement]{{Name: "schema", NumChildren: thrift.New(int32(len(cols)))}},
		NumRows: rows,
	}
	rg := pformat.RowGroup{NumRows: rows}
	for _, c := range cols {
		md.Schema = append(md.Schema, c.se)
		cm := pformat.ColumnMetaData{
			Type:         c.se.Type.V,
			Encoding:     thrift.Slice[pformat.Encoding]{pformat.Plain, pformat.RLE},
			PathInSchema: thrift.Slice[string]{c.se.Name},
			Codec:        c.codec,
			NumValues:    rows,
		}
		start := int64(buf.Len())
		for _, p := range c.pages {
			h := p.h
			if h.CompressedPageSize == 0 {
				h.CompressedPageSize = int32(len(p.data))
			}
			if h.UncompressedPageSize == 0 && c.codec == pformat.Uncompressed {
				h.UncompressedPageSize = h.CompressedPageSize
			}
			hb, err := thrift.Marshal(&proto, &h)
			if err != nil {
				t.Fatal(err)
			}
			off := int64(buf.Len())
			if h.Type == pformat.DictionaryPage {
				cm.DictionaryPageOffset = off
			} else if cm.DataPageOffset == 0 {
				cm.DataPageOffset = off
			}
			buf.Write(hb)
			buf.Write(p.data)
			cm.TotalUncompressedSize += int64(len(hb)) + int64(h.UncompressedPageSize)
		}
		cm.TotalCompressedSize = int64(buf.Len()) - start
		rg.TotalByteSize += cm.TotalUncompressedSize
		rg.Columns = append(rg.Columns, pformat.ColumnChunk{FileOffset: start, MetaData: cm})
	}
	md.RowGroups = thrift.Slice[pformat.RowGroup]{rg}
	if edit != nil {
		edit(&md)
	}
	footer, err := thrift.Marshal(&proto, &md)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(footer)
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(footer))))
	buf.WriteString("PAR1")
	return buf.Bytes()
}

// craftLeaf is the schema element of a flat leaf column.
func craftLeaf(name string, typ pformat.Type, rep pformat.FieldRepetitionType) pformat.SchemaElement {
	return pformat.SchemaElement{Name: name, Type: thrift.New(typ), RepetitionType: thrift.New(rep)}
}

// dataPageV1 is the header of a DATA_PAGE of n values in encoding enc
// (levels RLE).
func dataPageV1(n int32, enc pformat.Encoding) pformat.PageHeader {
	return pformat.PageHeader{Type: pformat.DataPage, DataPageHeader: thrift.New(pformat.DataPageHeader{
		NumValues: n, Encoding: enc, DefinitionLevelEncoding: pformat.RLE, RepetitionLevelEncoding: pformat.RLE})}
}

// dataPageV2 is the header of a DATA_PAGE_V2 of n values (nulls of them
// null) in encoding enc, with defLen bytes of definition levels.
func dataPageV2(n, nulls int32, enc pformat.Encoding, defLen int32) pformat.PageHeader {
	return pformat.PageHeader{Type: pformat.DataPageV2, DataPageHeaderV2: thrift.New(pformat.DataPageHeaderV2{
		NumValues: n, NumNulls: nulls, NumRows: n, Encoding: enc, DefinitionLevelsByteLength: defLen, IsCompressed: thrift.New(false)})}
}

// dictPage is the header of a PLAIN dictionary page of n values.
func dictPage(n int32) pformat.PageHeader {
	return pformat.PageHeader{Type: pformat.DictionaryPage, DictionaryPageHeader: thrift.New(pformat.DictionaryPageHeader{NumValues: n, Encoding: pformat.Plain})}
}

// rleRun is an RLE run of count copies of value (of width bytes).
func rleRun(count uint64, value []byte) []byte {
	return append(binary.AppendUvarint(nil, count<<1), value...)
}

// levelsV1 prefixes RLE levels with their length, as a DATA_PAGE holds them.
func levelsV1(levels []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(levels))), levels...)
}

// plainInt64 is the PLAIN encoding of vs.
func plainInt64(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

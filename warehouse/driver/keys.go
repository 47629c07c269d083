package driver

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"

	"github.com/sluicehq/sluice/schema"
)

// KeySet remembers the primary keys of the rows of one object as they
// stream by, so that a merging backend can tell a row that repeats a key
// of an earlier row of the object (which needs the careful, slower path)
// from one that does not. It may take a new key for a repeat (a hash
// collision), never a repeat for a new key, so a backend that takes the
// slower path for every reported repeat stays correct; only its speed
// depends on how rarely that happens.
//
// Memory is bounded: the first keys are held exactly (in a map of their
// 64-bit hashes, or of the key itself for one integer column), then in a
// Bloom filter of fixed size (bloomBits), whose false positives stay below
// one in a million up to a million keys and below 1 % at ten million.
type KeySet struct {
	cols  []int // the key columns
	seed  maphash.Seed
	exact map[uint64]struct{}
	bloom []uint64 // bloomBits bits, once exact overflowed
	rep   []bool
	any   bool
}

const (
	maxExactKeys = 1 << 16
	bloomBits    = 1 << 27 // 16 MiB
)

// NewKeySet returns an empty set for the primary key of t.
func NewKeySet(t Table) *KeySet {
	k := &KeySet{seed: maphash.MakeSeed(), exact: map[uint64]struct{}{}}
	for _, name := range t.PrimaryKey {
		k.cols = append(k.cols, slices.IndexFunc(t.Columns, func(c schema.Column) bool { return c.Name == name }))
	}
	return k
}

// Repeats reports whether a row added so far repeated the key of an
// earlier row (or seemed to).
func (k *KeySet) Repeats() bool { return k.any }

// Add adds the keys of b's rows and returns, per row, whether its key was
// seen before, in an earlier batch or an earlier row of b; nil when no row
// of b repeats a key. The slice is valid until the next Add.
func (k *KeySet) Add(b *schema.Batch) []bool {
	n := b.Len()
	k.rep = slices.Grow(k.rep[:0], n)[:n]
	clear(k.rep)
	found := false
	intKey := len(k.cols) == 1 && b.Columns[k.cols[0]].Type.IsInt()
	var h maphash.Hash
	h.SetSeed(k.seed)
	for i := range n {
		var x uint64
		if intKey {
			x = uint64(b.Vecs[k.cols[0]].Int[i])
		} else {
			x = k.hash(&h, b, i)
		}
		if k.add(x, !intKey) {
			k.rep[i], found = true, true
		}
	}
	if !found {
		return nil
	}
	k.any = true
	return k.rep
}

// add adds x and reports whether it was there.
func (k *KeySet) add(x uint64, hashed bool) bool {
	if k.bloom == nil {
		if _, ok := k.exact[x]; ok {
			return true
		}
		k.exact[x] = struct{}{}
		if len(k.exact) <= maxExactKeys {
			return false
		}
		k.bloom = make([]uint64, bloomBits/64)
		for y := range k.exact {
			k.setBloom(y, hashed)
		}
		k.exact = nil
		return false
	}
	return k.setBloom(x, hashed)
}

// setBloom sets x's four bits and reports whether all were set.
func (k *KeySet) setBloom(x uint64, hashed bool) bool {
	if !hashed {
		x = mix(x)
	}
	h1, h2 := x, mix(x)|1
	all := true
	for i := range uint64(4) {
		bit := (h1 + i*h2) % bloomBits
		w, m := bit/64, uint64(1)<<(bit%64)
		if k.bloom[w]&m == 0 {
			all = false
			k.bloom[w] |= m
		}
	}
	return all
}

// mix is splitmix64's finalizer: it spreads integer keys over the bits.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hash returns the 64-bit hash of row i's key.
func (k *KeySet) hash(h *maphash.Hash, b *schema.Batch, i int) uint64 {
	h.Reset()
	var buf [8]byte
	for _, j := range k.cols {
		v := &b.Vecs[j]
		var x uint64
		switch t := v.Type; {
		case v.Null[i]:
			h.WriteByte(0)
			continue
		case t.IsInt():
			x = uint64(v.Int[i])
		case t.IsFloat():
			x = math.Float64bits(v.Float[i])
		case t == schema.Boolean:
			if v.Bool[i] {
				x = 1
			}
		case t.IsTime():
			x = uint64(v.Time[i].Unix())<<30 ^ uint64(v.Time[i].Nanosecond())
		default:
			s := v.TextBytes(i)
			x = uint64(len(s))
			h.Write(s)
		}
		h.WriteByte(1)
		binary.LittleEndian.PutUint64(buf[:], x)
		h.Write(buf[:])
	}
	return h.Sum64()
}

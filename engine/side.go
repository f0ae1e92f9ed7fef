package engine

import "github.com/tandemsync/tandem/state"

// side is a direction of the pair: this is the side an action writes, other the side whose change it carries
// (a local edit is uploaded: this is the remote, other the local side). The planner's rules are written once
// over a side and run for both.
type side struct{ this, other state.Side }

var (
	toRemote = side{this: state.Remote, other: state.Local}
	toLocal  = side{this: state.Local, other: state.Remote}
	sides    = [2]side{toRemote, toLocal}
)

// sideOps are the ops that write one side, by the side they write, and the id indexes of that side's records
// and of its base records.
var sideOps = [2]struct {
	transfer, mkdir, del, move, chmod Op
	index, baseIndex                  state.Index
}{
	state.Local:  {Download, MkdirLocal, DeleteLocal, MoveLocal, ChmodLocal, state.IDLocal, state.IDBaseLocal},
	state.Remote: {Upload, MkdirRemote, DeleteRemote, MoveRemote, ChmodRemote, state.IDRemote, state.IDBaseRemote},
}

// direction is the side an action changes (the remote, for ops that write no one side) and the other.
func (a Action) direction() side {
	switch o := sideOps[state.Local]; a.Op {
	case o.transfer, o.mkdir, o.del, o.move, o.chmod:
		return toLocal
	}
	return toRemote
}

// on is the record on side sd of the two.
func on(sd state.Side, l, r *state.Record) *state.Record {
	if sd == state.Local {
		return l
	}
	return r
}

// pair puts this and other records back in (local, remote) order.
func (s side) pair(this, other *state.Record) (l, r *state.Record) {
	if s.this == state.Local {
		return this, other
	}
	return other, this
}

// adverb is how reasons name a side's change ("changed locally").
func adverb(sd state.Side) string { return sd.String() + "ly" }

// holds: file record f on side sd holds the content base b recorded. Local files always carry a digest; a
// remote file holds it at the same revision too (vBoxx has no digest).
func holds(sd state.Side, f *state.Record, b *state.Base) bool {
	if sd == state.Remote && f.Rev == b.Remote.Rev {
		return true
	}
	return sameDigest(f.Hash, b.Hash)
}

package cluster

import (
	"cmp"
	"slices"
	"time"
)

// Defaults of PlacementConfig.
const (
	// DefaultSampleInterval is how often a node samples its load and
	// decides placements.
	DefaultSampleInterval = 5 * time.Second
	// DefaultHigh and DefaultLow are the busy fractions above which a node
	// sheds work and below which it takes work back (or accepts it).
	DefaultHigh = 0.75
	DefaultLow  = 0.40
	// DefaultSamples consecutive samples past a watermark trigger a move,
	// so a spike of one sample moves nothing.
	DefaultSamples = 3
	// DefaultMinStay keeps a spawned instance at least this long, so load
	// that oscillates does not make instances flap.
	DefaultMinStay = time.Minute
	// DefaultMaxMoves bounds spawns plus retirements per round.
	DefaultMaxMoves = 1
	// DefaultMargin: a peer takes work only if it is this much less busy.
	DefaultMargin = 0.25
)

// PlacementConfig tunes when a node ships work to peers. Zero fields mean
// the defaults.
type PlacementConfig struct {
	SampleInterval time.Duration
	High, Low      float64
	Samples        int
	MinStay        time.Duration
	MaxMoves       int
	Margin         float64
}

func (c PlacementConfig) withDefaults() PlacementConfig {
	if c.SampleInterval <= 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	if c.High <= 0 {
		c.High = DefaultHigh
	}
	if c.Low <= 0 {
		c.Low = DefaultLow
	}
	if c.Samples <= 0 {
		c.Samples = DefaultSamples
	}
	if c.MinStay <= 0 {
		c.MinStay = DefaultMinStay
	}
	if c.MaxMoves <= 0 {
		c.MaxMoves = DefaultMaxMoves
	}
	if c.Margin <= 0 {
		c.Margin = DefaultMargin
	}
	return c
}

// Placement is an instance a peer runs for this node.
type Placement struct {
	Processor string    `json:"processor"`
	SHA256    string    `json:"sha256"`
	Peer      string    `json:"peer"`
	ID        string    `json:"id"`
	Since     time.Time `json:"since"`
}

// Action is one decision of a Planner: spawn a processor version on a peer,
// or retire a placement.
type Action struct {
	Spawn     bool
	Processor string
	SHA256    string
	Peer      string    // for Spawn
	Retire    Placement // for a retirement
}

// Planner decides placements from successive load samples, with
// hysteresis: a node spawns its busiest replicated processor on the least
// loaded peer after Samples consecutive samples above High, if that peer
// is below Low and at least Margin less busy; it retires its oldest
// placement after Samples consecutive samples below Low, once that
// placement has stayed MinStay. Each round does at most MaxMoves, and a
// move restarts the count, so the next one needs Samples more samples.
// Time is passed in, so tests drive it. A Planner is not safe for
// concurrent use.
type Planner struct {
	cfg          PlacementConfig
	above, below int
}

// NewPlanner returns a planner; zero fields of cfg mean the defaults.
func NewPlanner(cfg PlacementConfig) *Planner { return &Planner{cfg: cfg.withDefaults()} }

// Plan returns the moves for one sample: this node's load, its peers (only
// alive ones count), how busy each processor kept this node, and the
// placements it has.
func (p *Planner) Plan(now time.Time, self Load, peers []Member, procs []ProcessorLoad, placed []Placement) []Action {
	switch {
	case self.Busy > p.cfg.High:
		p.above++
		p.below = 0
	case self.Busy < p.cfg.Low:
		p.below++
		p.above = 0
	default:
		p.above, p.below = 0, 0
	}
	var actions []Action
	if p.above >= p.cfg.Samples {
		actions = p.spawn(self, peers, procs, placed)
		if len(actions) > 0 {
			p.above = 0
		}
	}
	if p.below >= p.cfg.Samples && len(placed) > 0 {
		oldest := slices.MinFunc(placed, func(a, b Placement) int { return a.Since.Compare(b.Since) })
		if now.Sub(oldest.Since) >= p.cfg.MinStay {
			actions = append(actions, Action{Processor: oldest.Processor, SHA256: oldest.SHA256, Retire: oldest})
			p.below = 0
		}
	}
	if len(actions) > p.cfg.MaxMoves {
		actions = actions[:p.cfg.MaxMoves]
	}
	return actions
}

func (p *Planner) spawn(self Load, peers []Member, procs []ProcessorLoad, placed []Placement) []Action {
	candidates := slices.Clone(procs)
	slices.SortFunc(candidates, func(a, b ProcessorLoad) int { return cmp.Compare(b.Busy, a.Busy) })
	for _, proc := range candidates {
		if proc.Singleton || proc.Busy <= 0 {
			continue
		}
		if peer, ok := p.target(self, peers, proc, placed); ok {
			return []Action{{Spawn: true, Processor: proc.Name, SHA256: proc.SHA256, Peer: peer}}
		}
	}
	return nil
}

// target picks the least busy alive peer that can take proc.
func (p *Planner) target(self Load, peers []Member, proc ProcessorLoad, placed []Placement) (string, bool) {
	best, found := Member{}, false
	for _, m := range peers {
		if m.State != StateAlive || m.Load.Busy >= p.cfg.Low || self.Busy-m.Load.Busy < p.cfg.Margin {
			continue
		}
		if slices.ContainsFunc(placed, func(pl Placement) bool {
			return pl.Peer == m.Name && pl.Processor == proc.Name && pl.SHA256 == proc.SHA256
		}) {
			continue
		}
		if !found || m.Load.Busy < best.Load.Busy || (m.Load.Busy == best.Load.Busy && m.Name < best.Name) {
			best, found = m, true
		}
	}
	return best.Name, found
}

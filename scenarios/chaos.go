package scenarios

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Action is one entry of the chaos list: a fault that starts At into the run,
// lasts For (reverted at its end) and, with Every, repeats. Target names where
// it applies (producers, consumers, a broker id, all); what is valid depends
// on the action. The action's own fields are decoded by its ActionFunc into
// Params.
type Action struct {
	Action string
	At     Duration
	For    *Duration
	Every  *Duration
	Target string
	// Optional is set by `required: false`: a fault that fails to apply
	// or to revert is then reported but does not fail the run. By default
	// it does, since the experiment did not happen as declared.
	Optional bool
	Node     *yaml.Node // the entry, for the action's own fields and positions
	Params   any
}

// ActionTarget says what a chaos action acts on, as its package declares
// it: validation checks actions on consumers against the scenario's
// consumers (a produce-only run has none; a pipeline's built-in processor
// instances stand for them), and a distributed run carries out actions on
// the system once, the others on every shard.
type ActionTarget int

const (
	OnSystem      ActionTarget = iota // the system under test: a broker, a command
	OnProducers                       // the producers (re-sends)
	OnConsumers                       // the consumers, or what they do (reject poison)
	OnConnections                     // the connections, through each process's proxy
)

// commonActionFields are decoded here; every other key belongs to the action.
var commonActionFields = []string{"action", "at", "for", "every", "target", "required"}

// DecodeNode splits the common fields from the action's own.
func (a *Action) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, field, "want a mapping such as {action: consumer-crash, at: 10s}, got %s", describe(n))
		return
	}
	var common struct {
		Action   string    `yaml:"action,required"`
		At       Duration  `yaml:"at,required"`
		For      *Duration `yaml:"for"`
		Every    *Duration `yaml:"every"`
		Target   string    `yaml:"target"`
		Required *bool     `yaml:"required"`
	}
	own := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	mine := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		dst := own
		if contains(commonActionFields, n.Content[i].Value) {
			dst = mine
		}
		dst.Content = append(dst.Content, n.Content[i], n.Content[i+1])
	}
	d.Decode(mine, field, &common)
	*a = Action{Action: common.Action, At: common.At, For: common.For, Every: common.Every, Target: common.Target,
		Optional: common.Required != nil && !*common.Required, Node: own}
}

// Window returns the times the action is active within a run of length total:
// each start and end, repeating with Every. An action without For is a
// point event (end == start).
func (a *Action) Window(total Duration) [][2]Duration {
	var out [][2]Duration
	length := Duration(0)
	if a.For != nil {
		length = *a.For
	}
	for start := a.At; start < total; start += *a.Every {
		out = append(out, [2]Duration{start, start + length})
		if a.Every == nil || *a.Every <= 0 {
			break
		}
	}
	return out
}

func (l *Loader) validateChaos(d *Decoder, cn *yaml.Node, s *Scenario) {
	if cn == nil || cn.Kind != yaml.SequenceNode {
		return
	}
	total := Duration(s.profile.Duration)
	names := sortedKeys(l.actions)
	for i := range s.Chaos {
		a := &s.Chaos[i]
		field := fmt.Sprintf("chaos[%d]", i)
		entry := resolve(cn.Content[i])
		if a.Action == "" {
			continue // already reported as missing
		}
		decode, ok := l.actions[a.Action]
		if !ok {
			d.Errorf(at(entry, "action"), field+".action", "unknown action %q%s; valid: %s", a.Action, suggest(a.Action, names), joinList(names))
			continue
		}
		if a.At >= total {
			d.Errorf(at(entry, "at"), field+".at", "starts at %s, but the traffic ends at %s; chaos must start while traffic runs", a.At, total)
		}
		if a.For != nil && *a.For <= 0 {
			d.Errorf(at(entry, "for"), field+".for", "must be longer than 0s")
		}
		if a.Every != nil {
			switch {
			case *a.Every <= 0:
				d.Errorf(at(entry, "every"), field+".every", "must be longer than 0s")
			case a.For != nil && *a.Every <= *a.For:
				d.Errorf(at(entry, "every"), field+".every", "repeats every %s but each fault lasts %s; every must be longer than for", *a.Every, *a.For)
			}
		}
		a.Params = decode(d, a.Node, field, a, s)
	}
}

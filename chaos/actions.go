package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

func init() {
	register(Action{Name: "consumer-pause", Decode: decodePause, Target: scenarios.OnConsumers})
	register(Action{Name: "slow-consumer", Decode: decodeSlow, Target: scenarios.OnConsumers})
	register(Action{Name: "consumer-crash", Decode: decodeCrash, Target: scenarios.OnConsumers})
	register(Action{Name: "duplicate", Decode: decodeDuplicate, Target: scenarios.OnProducers})
	register(Action{Name: "exec", Decode: decodeExec, Target: scenarios.OnSystem})
	register(Action{Name: "broker-restart", Decode: decodeRestart, Target: scenarios.OnSystem})
	register(Action{Name: "broker-pause", Decode: decodeBrokerPause, Target: scenarios.OnSystem})
	register(Action{Name: "broker-partition", Decode: decodeBrokerPartition, Target: scenarios.OnSystem})
	register(Action{Name: "leader-move", Decode: decodeLeaderMove, Target: scenarios.OnSystem})
	register(Action{Name: "protocol-error", Decode: decodeProtocolError, Target: scenarios.OnSystem})
	register(Action{Name: "produce-error", Decode: decodeProduceError, Target: scenarios.OnSystem})
	register(Action{Name: "network", Decode: decodeNetwork, Target: scenarios.OnConnections})
	register(Action{Name: "poison", Decode: decodePoison, Target: scenarios.OnConsumers})
}

// checks shared by decoders.

func needFor(d *scenarios.Decoder, a *scenarios.Action, field, why string) {
	if a.For == nil {
		d.Errorf(a.Node, field, "%s needs `for` (how long %s)", a.Action, why)
	}
}

func targetOf(d *scenarios.Decoder, a *scenarios.Action, field string, valid ...string) {
	if a.Target == "" {
		return
	}
	d.OneOf(a.Node, field+".target", a.Target, valid...)
}

func needAbility(d *scenarios.Decoder, a *scenarios.Action, s *scenarios.Scenario, field, ability, hint string) bool {
	if drivers.HasAbility(s.Driver.Options, ability) {
		return true
	}
	d.Errorf(a.Node, field+".action", "%s cannot run on driver %q as configured: %s", a.Action, s.Driver.Kind, hint)
	return false
}

// consumerCount validates a count of consumers (0 = all of them).
func consumerCount(d *scenarios.Decoder, n *yaml.Node, field string, count, consumers int) {
	if count < 0 || count > consumers {
		d.Errorf(node(n, "count"), field+".count", "must be between 1 and the %d consumers, got %d", consumers, count)
	}
}

// firstIDs returns the first count of the run's consumers (all of them
// when count is 0) that this process runs.
func firstIDs(c Consumers, count int) []int {
	total := c.Count()
	if count <= 0 || count > total {
		count = total
	}
	var ids []int
	for id := range count {
		if c.Owns(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// consumer-pause: consumers stop consuming for the window, so a backlog
// builds and then drains.

type pauseSpec struct{ count int }

func decodePause(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Count int `yaml:"count"` // default: all consumers
	}
	d.Decode(n, field, &p)
	needFor(d, a, field, "the consumers stay paused")
	targetOf(d, a, field, "consumers")
	consumerCount(d, n, field, p.Count, s.Consumers)
	return &pauseSpec{count: p.Count}
}

func (p *pauseSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	ids := firstIDs(env.Consumers, p.count)
	env.Consumers.Pause(ids)
	f.details["consumers"] = len(ids)
	hold(ctx, window, false)
	f.reverting()
	env.Consumers.Resume(ids)
	return nil
}

// slow-consumer: consumers process at most rate deliveries per second each.

type slowSpec struct {
	count int
	rate  float64
}

func decodeSlow(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Rate  scenarios.Rate `yaml:"rate,required"` // per consumer
		Count int            `yaml:"count"`
	}
	if d.Decode(n, field, &p) && p.Rate <= 0 {
		d.Errorf(node(n, "rate"), field+".rate", "must be more than 0/s")
	}
	needFor(d, a, field, "the consumers stay slow")
	targetOf(d, a, field, "consumers")
	consumerCount(d, n, field, p.Count, s.Consumers)
	return &slowSpec{count: p.Count, rate: p.Rate.PerSecond()}
}

func (p *slowSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	ids := firstIDs(env.Consumers, p.count)
	env.Consumers.Throttle(ids, p.rate)
	f.details["consumers"] = len(ids)
	hold(ctx, window, false)
	f.reverting()
	env.Consumers.Throttle(ids, 0)
	return nil
}

// consumer-crash: consumers die (abruptly unless graceful) and, with `for`,
// come back when it ends.

type crashSpec struct {
	count    int
	graceful bool
}

func decodeCrash(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	p := struct {
		Count    int  `yaml:"count"` // default 1
		Graceful bool `yaml:"graceful"`
	}{Count: 1}
	d.Decode(n, field, &p)
	targetOf(d, a, field, "consumers")
	consumerCount(d, n, field, p.Count, s.Consumers)
	if !p.Graceful {
		needAbility(d, a, s, field, scenarios.AbilityConsumerCrash,
			"its consumers cannot die abruptly (kafka, rabbitmq and eventbridge consumers can); use graceful: true for a clean stop")
	}
	return &crashSpec{count: p.Count, graceful: p.Graceful}
}

func (p *crashSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	ids := firstIDs(env.Consumers, max(p.count, 1))
	f.details["consumers"] = len(ids)
	f.details["graceful"] = p.graceful
	var stopped []int
	var err error
	for _, id := range ids {
		if err = env.restarts.wait(ctx, id); err != nil {
			err = errorf("consumer-crash", "consumer %d was still down from an earlier crash: %v", id, err)
			break
		}
		if err = env.Consumers.Stop(ctx, id, p.graceful); err != nil {
			err = errorf("consumer-crash", "stopping consumer %d: %v", id, err)
			break
		}
		stopped = append(stopped, id)
		if window > 0 {
			env.restarts.begin(id)
		}
	}
	if window <= 0 {
		f.details["restarted"] = false
		return err
	}
	hold(ctx, window, false)
	f.reverting()
	rctx, cancel := revertCtx()
	defer cancel()
	if ctx.Err() != nil { // the run is ending: a consumer started now has little left to do
		rctx, cancel = context.WithTimeout(rctx, endingRetry)
		defer cancel()
	}
	for _, id := range stopped {
		if serr := startAgain(rctx, env.Consumers, id); serr != nil && err == nil {
			err = errorf("consumer-crash", "restarting consumer %d: %v", id, serr)
		}
		env.restarts.end(id)
	}
	f.details["restarted"] = err == nil
	return err
}

// endingRetry bounds retrying a revert once the run is ending (interrupted,
// or past its drain), so that an interrupt still ends the run promptly.
const endingRetry = 3 * time.Second

// startAgain starts consumer id again, retrying while the system refuses
// (a broker restarting at the same time, slower than its fault's window on
// a loaded machine) until ctx ends.
func startAgain(ctx context.Context, c Consumers, id int) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.Start(ctx, id)
		if err == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// duplicate: producers re-send a fraction of their messages, same stamp.

type duplicateSpec struct{ fraction float64 }

func decodeDuplicate(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Fraction float64 `yaml:"fraction,required"`
	}
	if d.Decode(n, field, &p) && (p.Fraction <= 0 || p.Fraction > 1) {
		d.Errorf(node(n, "fraction"), field+".fraction", "must be above 0 and at most 1, got %g", p.Fraction)
	}
	needFor(d, a, field, "producers keep re-sending")
	targetOf(d, a, field, "producers")
	return &duplicateSpec{fraction: p.Fraction}
}

func (p *duplicateSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	before := env.Producers.Duplicated()
	env.Producers.Duplicate(p.fraction)
	hold(ctx, window, false)
	f.reverting()
	env.Producers.Duplicate(0)
	f.details["injected"] = env.Producers.Duplicated() - before
	return nil
}

// poison: producers flag a fraction of their messages; spate's consumers
// fail to process them, so the system's retry and dead-letter path is
// exercised. Messages that reach the dead-letter queue count as
// dead_lettered; one that vanishes on the way is lost.

type poisonSpec struct{ fraction float64 }

func decodePoison(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Fraction float64 `yaml:"fraction,required"`
	}
	if d.Decode(n, field, &p) && (p.Fraction <= 0 || p.Fraction > 1) {
		d.Errorf(node(n, "fraction"), field+".fraction", "must be above 0 and at most 1, got %g", p.Fraction)
	}
	needFor(d, a, field, "producers keep sending poison")
	targetOf(d, a, field, "producers")
	needAbility(d, a, s, field, scenarios.AbilityPoison,
		"its consumers cannot reject messages (rabbitmq, and memory with dead-letter: true, can)")
	return &poisonSpec{fraction: p.Fraction}
}

func (p *poisonSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	before := env.Producers.Poisoned()
	env.Producers.Poison(p.fraction)
	hold(ctx, window, false)
	f.reverting()
	env.Producers.Poison(0)
	f.details["injected"] = env.Producers.Poisoned() - before
	return nil
}

// exec: run a command (tc, iptables, pumba, kubectl...) and, with revert,
// its undo at the end of the window, or at the end of the run without `for`.

type execSpec struct {
	command, revert string
	timeout         time.Duration
}

// DefaultCommandTimeout bounds a chaos command unless the scenario says.
const DefaultCommandTimeout = 60 * time.Second

func decodeExec(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Command string             `yaml:"command,required"`
		Revert  string             `yaml:"revert"`
		Timeout scenarios.Duration `yaml:"timeout"`
	}
	d.Decode(n, field, &p)
	return &execSpec{command: p.Command, revert: p.Revert, timeout: timeoutOr(p.Timeout)}
}

func timeoutOr(t scenarios.Duration) time.Duration {
	if t <= 0 {
		return DefaultCommandTimeout
	}
	return t.D()
}

func (p *execSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	// The command stops with the run (an interrupt signals it); its revert
	// runs whatever happened, bounded by its own timeout.
	err := runCommand(ctx, p.command, p.timeout, f.details, "")
	if p.revert == "" {
		return err
	}
	hold(ctx, window, true)
	if rerr := runCommand(context.Background(), p.revert, p.timeout, f.details, "revert_"); err == nil {
		err = rerr
	}
	return err
}

// broker-restart: restart one broker or all, through the driver's ability
// (embedded Kafka, managed RabbitMQ) or user commands for external systems.
// `for` is the down time.

type restartSpec struct {
	target      brokerTarget
	mode        drivers.RestartMode
	stop, start string
	timeout     time.Duration
}

func decodeRestart(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Mode    string             `yaml:"mode"` // graceful (default) or kill
		Stop    string             `yaml:"stop"`
		Start   string             `yaml:"start"`
		Timeout scenarios.Duration `yaml:"timeout"`
	}
	d.Decode(n, field, &p)
	spec := &restartSpec{target: brokerTarget{id: drivers.AllBrokers}, stop: p.Stop, start: p.Start, timeout: timeoutOr(p.Timeout)}
	switch p.Mode {
	case "", "graceful":
	case "kill":
		spec.mode = drivers.Kill
	default:
		d.OneOf(node(n, "mode"), field+".mode", p.Mode, "graceful", "kill")
	}
	switch {
	case (p.Stop == "") != (p.Start == ""):
		d.Errorf(a.Node, field, "give both stop and start commands, or neither")
		spec.target = decodeBrokerTarget(d, a, s, field, true, false)
	case p.Stop != "":
		if mn := scenarios.Child(n, "mode"); mn != nil {
			d.Errorf(mn, field+".mode", "mode applies to brokers spate manages; with commands, say it in the stop command")
		}
		// The commands say what stops; target only names it.
		spec.target = decodeBrokerTarget(d, a, s, field, true, false)
	default:
		if needAbility(d, a, s, field, scenarios.AbilityBrokerRestart,
			"it manages no brokers; use brokers: embedded (kafka) or url: managed (rabbitmq), or give stop: and start: commands") {
			spec.target = decodeBrokerTarget(d, a, s, field, true, true)
		}
	}
	return spec
}

func (p *restartSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	f.details["down"] = window.String()
	if p.stop != "" {
		err := runCommand(ctx, p.stop, p.timeout, f.details, "stop_")
		hold(ctx, window, false)
		f.reverting()
		if serr := runCommand(context.Background(), p.start, p.timeout, f.details, "start_"); err == nil {
			err = serr
		}
		return err
	}
	rs, ok := env.Driver.(drivers.BrokerRestarter)
	if !ok {
		return errorf("broker-restart", "the driver cannot restart brokers")
	}
	id, err := p.target.resolve(ctx, env, f)
	if err != nil {
		return errorf("broker-restart", "%v", err)
	}
	f.details["broker"] = brokerName(id)
	f.details["mode"] = map[drivers.RestartMode]string{drivers.Graceful: "graceful", drivers.Kill: "kill"}[p.mode]
	rctx, cancel := context.WithTimeout(context.Background(), window+p.timeout)
	defer cancel()
	f.applied()
	began := time.Now()
	err = rs.RestartBroker(rctx, id, p.mode, window)
	f.details["took"] = time.Since(began).Round(time.Millisecond).String()
	f.reverting() // the broker is back: the window ends here
	leadersAfter(env, f)
	return err
}

// brokerTarget is the broker a node fault acts on: one broker, every
// broker (drivers.AllBrokers), or the one leading the driver's queue when
// the fault starts.
type brokerTarget struct {
	id     int
	leader bool
}

// decodeBrokerTarget reads target: all (allowed when allowAll; also what
// no target means), leader, or a broker id, checked against the brokers
// the driver's options say it will manage (drivers.BrokerLister) when
// managed is set.
func decodeBrokerTarget(d *scenarios.Decoder, a *scenarios.Action, s *scenarios.Scenario, field string, allowAll, managed bool) brokerTarget {
	switch a.Target {
	case "", "all":
		if !allowAll {
			d.Errorf(a.Node, field+".target", "%s needs target: a broker id (0, 1, ...) or leader (the broker leading the queue when the fault starts)", a.Action)
		}
		return brokerTarget{id: drivers.AllBrokers}
	case "leader":
		if managed {
			needAbility(d, a, s, field, scenarios.AbilityLeaderLocate,
				"target: leader needs a driver that can say which broker leads the queue (rabbitmq with url: managed); name a broker id instead")
		} else {
			d.Errorf(a.Node, field+".target", "target: leader needs a broker spate manages; with stop and start commands, the commands say which broker stops")
		}
		return brokerTarget{leader: true}
	}
	valid := "a broker id (0, 1, ...) or leader"
	if allowAll {
		valid = "all, " + valid
	}
	id, err := strconv.Atoi(a.Target)
	if err != nil || id < 0 {
		d.Errorf(a.Node, field+".target", "want %s, got %q", valid, a.Target)
		return brokerTarget{id: drivers.AllBrokers}
	}
	if bl, ok := s.Driver.Options.(drivers.BrokerLister); ok && managed {
		if ids := bl.BrokerIDs(); len(ids) > 0 && !slices.Contains(ids, id) {
			d.Errorf(a.Node, field+".target", "no broker %d: the %s driver as configured manages brokers %s; want %s",
				id, s.Driver.Kind, idRange(ids), valid)
		}
	}
	return brokerTarget{id: id}
}

// idRange names a list of broker ids for messages: "0", "0 to 2".
func idRange(ids []int) string {
	if len(ids) == 1 {
		return strconv.Itoa(ids[0])
	}
	return fmt.Sprintf("%d to %d", ids[0], ids[len(ids)-1])
}

// resolve returns the broker to act on, asking the driver which broker
// leads the queue for target: leader, and records in f where every queue's
// leader was before the fault (leaders_before) when the driver can say.
func (t brokerTarget) resolve(ctx context.Context, env *Env, f *fault) (int, error) {
	ll, ok := env.Driver.(drivers.LeaderLocator)
	if !ok {
		if t.leader {
			return 0, errors.New("the driver cannot say which broker leads the queue")
		}
		return t.id, nil
	}
	lctx, cancel := context.WithTimeout(ctx, leaderTimeout)
	defer cancel()
	leaders, err := ll.Leaders(lctx)
	if err != nil {
		if t.leader {
			return 0, fmt.Errorf("which broker leads the queue: %v", err)
		}
		f.details["leaders_before_error"] = err.Error()
		return t.id, nil
	}
	f.details["leaders_before"] = leaders
	if !t.leader {
		return t.id, nil
	}
	names := make([]string, 0, len(leaders))
	for q := range leaders {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		if id := leaders[q]; id >= 0 {
			f.details["leader_of"] = q
			return id, nil
		}
	}
	return 0, errors.New("no queue has a leader now")
}

// leaderTimeout bounds asking the driver which broker leads the queues.
const leaderTimeout = 30 * time.Second

// leadersAfter records in f where every queue's leader is once the fault
// is taken back (leaders_after), when the driver can say. It is asked
// then, not later: leadership that moved during the fault usually stays
// where it went.
func leadersAfter(env *Env, f *fault) {
	ll, ok := env.Driver.(drivers.LeaderLocator)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderTimeout)
	defer cancel()
	leaders, err := ll.Leaders(ctx)
	if err != nil {
		f.details["leaders_after_error"] = err.Error()
		return
	}
	f.details["leaders_after"] = leaders
}

// broker-pause: a broker hangs (SIGSTOP) for the window, then goes on
// (SIGCONT): alive to the operating system, silent to everyone else.

type pauseBrokerSpec struct{ target brokerTarget }

func decodeBrokerPause(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct{}
	d.Decode(n, field, &p)
	needFor(d, a, field, "the broker stays paused")
	spec := &pauseBrokerSpec{target: brokerTarget{id: drivers.AllBrokers}}
	if needAbility(d, a, s, field, scenarios.AbilityBrokerPause,
		"it cannot pause the brokers (rabbitmq with url: managed can); to freeze a broker of your own, use exec with kill -STOP and a revert with kill -CONT") {
		spec.target = decodeBrokerTarget(d, a, s, field, true, true)
	}
	return spec
}

func (p *pauseBrokerSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	bp, ok := env.Driver.(drivers.BrokerPauser)
	if !ok {
		return errorf("broker-pause", "the driver cannot pause brokers")
	}
	id, err := p.target.resolve(ctx, env, f)
	if err != nil {
		return errorf("broker-pause", "%v", err)
	}
	f.details["broker"] = brokerName(id)
	f.applied()
	resume, err := bp.PauseBroker(ctx, id)
	if err != nil {
		return errorf("broker-pause", "%v", err)
	}
	hold(ctx, window, false)
	f.reverting()
	err = resume()
	leadersAfter(env, f)
	if err != nil {
		return errorf("broker-pause", "resuming broker %s: %v", brokerName(id), err)
	}
	return nil
}

// broker-partition: one broker is cut off from the other brokers of its
// cluster for the window; clients may still reach it.

type partitionSpec struct{ target brokerTarget }

func decodeBrokerPartition(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct{}
	d.Decode(n, field, &p)
	needFor(d, a, field, "the broker stays cut off")
	spec := &partitionSpec{}
	if needAbility(d, a, s, field, scenarios.AbilityBrokerPartition,
		"it manages no cluster of two or more brokers to partition (rabbitmq with url: managed and nodes: 2 or more does); "+
			"to cut clients off instead, use the network action") {
		spec.target = decodeBrokerTarget(d, a, s, field, false, true)
	}
	return spec
}

func (p *partitionSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	bp, ok := env.Driver.(drivers.BrokerPartitioner)
	if !ok {
		return errorf("broker-partition", "the driver cannot partition brokers")
	}
	id, err := p.target.resolve(ctx, env, f)
	if err != nil {
		return errorf("broker-partition", "%v", err)
	}
	f.details["broker"] = brokerName(id)
	f.applied()
	heal, err := bp.PartitionBroker(ctx, id)
	if err != nil {
		return errorf("broker-partition", "%v", err)
	}
	hold(ctx, window, false)
	f.reverting()
	err = heal()
	leadersAfter(env, f)
	if err != nil {
		return errorf("broker-partition", "healing the partition of broker %s: %v", brokerName(id), err)
	}
	return nil
}

func brokerName(id int) string {
	if id == drivers.AllBrokers {
		return "all"
	}
	return strconv.Itoa(id)
}

// leader-move: give partitions new leaders (Kafka).

type leaderMoveSpec struct{}

func decodeLeaderMove(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct{}
	d.Decode(n, field, &p)
	if a.Target != "" {
		d.Errorf(a.Node, field+".target", "leader-move applies to every partition; remove target")
	}
	needAbility(d, a, s, field, scenarios.AbilityLeaderMove, "only kafka with brokers: embedded can move leaders")
	return &leaderMoveSpec{}
}

func (leaderMoveSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	lm, ok := env.Driver.(drivers.LeaderMover)
	if !ok {
		return errorf("leader-move", "the driver cannot move leaders")
	}
	return lm.MoveLeaders(ctx)
}

// protocol-error and produce-error: the broker fails requests with an error
// code for the window (or for count requests).

type protocolSpec struct{ fault drivers.ProtocolFault }

func decodeProtocolError(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Request string `yaml:"request,required"`
		Error   string `yaml:"error,required"`
		Count   int    `yaml:"count"`
	}
	d.Decode(n, field, &p)
	return protocolCommon(d, n, field, a, s, drivers.ProtocolFault{Request: p.Request, Error: p.Error, Count: p.Count})
}

func decodeProduceError(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	p := struct {
		Error string `yaml:"error"` // default REQUEST_TIMED_OUT
		Count int    `yaml:"count"`
	}{Error: "REQUEST_TIMED_OUT"}
	d.Decode(n, field, &p)
	return protocolCommon(d, n, field, a, s, drivers.ProtocolFault{Request: "produce", Error: p.Error, Count: p.Count})
}

func protocolCommon(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario, f drivers.ProtocolFault) any {
	if f.Count < 0 {
		d.Errorf(node(n, "count"), field+".count", "must be 0 (every request in the window) or more, got %d", f.Count)
	}
	if f.Count == 0 && a.For == nil {
		d.Errorf(a.Node, field, "%s needs `for` (how long requests fail) or a count", a.Action)
	}
	if a.Target != "" {
		d.Errorf(a.Node, field+".target", "%s applies at the brokers; remove target", a.Action)
	}
	needAbility(d, a, s, field, scenarios.AbilityProtocolError, "only kafka with brokers: embedded can fail requests at the broker")
	return &protocolSpec{fault: f}
}

func (p *protocolSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	pf, ok := env.Driver.(drivers.ProtocolFaulter)
	if !ok {
		return errorf("protocol-error", "the driver cannot inject protocol errors")
	}
	remove, err := pf.InjectFault(ctx, p.fault)
	if err != nil {
		return err
	}
	f.details["request"], f.details["error"] = p.fault.Request, p.fault.Error
	hold(ctx, window, window <= 0)
	f.reverting()
	remove()
	return nil
}

// network: latency, bandwidth, reset, blackhole or down on one side's
// connections, through the in-process proxy.

type networkSpec struct {
	side    drivers.Side
	fault   string
	latency time.Duration
	jitter  time.Duration
	rate    int64 // bytes per second
}

// NetworkFaults are the valid values of a network action's fault field.
var NetworkFaults = []string{"latency", "bandwidth", "reset", "blackhole", "down"}

func decodeNetwork(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, s *scenarios.Scenario) any {
	var p struct {
		Fault   string             `yaml:"fault,required"`
		Latency scenarios.Duration `yaml:"latency"`
		Jitter  scenarios.Duration `yaml:"jitter"`
		Rate    scenarios.Size     `yaml:"rate"` // bytes per second, for bandwidth
	}
	if !d.Decode(n, field, &p) {
		return nil
	}
	spec := &networkSpec{fault: p.Fault, latency: p.Latency.D(), jitter: p.Jitter.D(), rate: int64(p.Rate)}
	needFor(d, a, field, "the network stays faulty")
	switch a.Target {
	case "producers":
		spec.side = drivers.ProducerSide
	case "consumers":
		spec.side = drivers.ConsumerSide
	case "":
		d.Errorf(a.Node, field+".target", "network needs target: producers or consumers")
	default:
		d.OneOf(a.Node, field+".target", a.Target, "producers", "consumers")
	}
	if d.OneOf(node(n, "fault"), field+".fault", p.Fault, NetworkFaults...) {
		switch {
		case p.Fault == "latency" && p.Latency < scenarios.Duration(time.Millisecond):
			d.Errorf(node(n, "latency"), field+".latency", "a latency fault needs latency of at least 1ms")
		case p.Fault == "bandwidth" && p.Rate < 1024:
			d.Errorf(node(n, "rate"), field+".rate", "a bandwidth fault needs a rate of at least 1KiB (bytes per second)")
		}
	}
	needAbility(d, a, s, field, scenarios.AbilityDial, "the driver does not connect through spate's dialer (kafka, rabbitmq and eventbridge do)")
	return spec
}

func (p *networkSpec) run(ctx context.Context, env *Env, window time.Duration, f *fault) error {
	if env.Network == nil {
		return errorf("network", "no proxy in the path")
	}
	nf := &netFault{down: p.fault == "down"}
	add := func(kind, stream string, attrs map[string]any) {
		name := env.Network.toxicName(kind)
		b, _ := json.Marshal(map[string]any{"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attrs})
		nf.toxics = append(nf.toxics, toxic{name: name, json: string(b)})
	}
	switch p.fault {
	case "latency":
		add("latency", "downstream", map[string]any{"latency": p.latency.Milliseconds(), "jitter": p.jitter.Milliseconds()})
	case "bandwidth":
		kbps := max(1, p.rate/1024)
		add("bandwidth", "upstream", map[string]any{"rate": kbps})
		add("bandwidth", "downstream", map[string]any{"rate": kbps})
	case "reset":
		add("reset_peer", "upstream", map[string]any{"timeout": 0})
	case "blackhole":
		add("timeout", "upstream", map[string]any{"timeout": 0})
		add("timeout", "downstream", map[string]any{"timeout": 0})
	}
	undo, err := env.Network.apply(p.side, nf)
	if err != nil {
		return err
	}
	f.details["side"] = p.side.String()
	f.details["fault"] = p.fault
	f.details["proxies"] = env.Network.Proxies(p.side)
	hold(ctx, window, false)
	f.reverting()
	undo()
	return nil
}

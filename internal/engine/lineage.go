package engine

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lineage"
	"github.com/sluicehq/sluice/pipeline"
)

// lineageQueue bounds the OpenLineage events waiting to be sent: emission
// never slows a load, and a lineage endpoint that is down costs at most
// this many events (each dropped one is logged).
const lineageQueue = 1024

// lineageSender sends OpenLineage events in the background, in order. It
// takes functions that build the events, so that what they read (a job
// run's output sizes) is read there too, off the pipeline's path.
type lineageSender struct {
	em     *lineage.Emitter
	ch     chan func() []lineage.RunEvent
	done   chan struct{}
	mu     sync.Mutex
	closed bool
}

// startLineage starts sending to em (nil: lineage off).
func (e *Engine) startLineage(em *lineage.Emitter) {
	if em == nil {
		return
	}
	s := &lineageSender{em: em, ch: make(chan func() []lineage.RunEvent, lineageQueue), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for build := range s.ch {
			for _, ev := range build() {
				if ev.Job.Namespace == "" {
					ev.Job.Namespace = "sluice/" + e.cfg.Spec.Name
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				if err := em.Emit(ctx, ev); err != nil {
					e.log.Warn("OpenLineage event not sent", "job", ev.Job.Name, "type", string(ev.EventType), "to", em.URL(), "err", err)
				}
				cancel()
			}
		}
	}()
	e.lineage = s
	e.closer = append(e.closer, func() {
		s.mu.Lock()
		if !s.closed {
			s.closed = true
			close(s.ch)
		}
		s.mu.Unlock()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			e.log.Warn("OpenLineage events still unsent at shutdown were dropped", "to", em.URL())
		}
		em.Close()
	})
}

// sendLineage queues ev (never blocks).
func (e *Engine) sendLineage(ev lineage.RunEvent) {
	e.sendLineageOf(ev.Job.Name, func() []lineage.RunEvent { return []lineage.RunEvent{ev} })
}

// sendLineageOf queues the events build makes, for job (never blocks; after
// Close it drops them).
func (e *Engine) sendLineageOf(job string, build func() []lineage.RunEvent) {
	s := e.lineage
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.ch <- build:
	default:
		e.log.Warn("OpenLineage event dropped: too many waiting to be sent", "job", job)
	}
}

func (e *Engine) objectDataset(key string) []lineage.Dataset {
	d, err := lineage.ObjectDataset(e.storeURL, key)
	if err != nil {
		e.log.Debug("no OpenLineage dataset for an object", "key", key, "err", err)
		return nil
	}
	return []lineage.Dataset{d}
}

// loadLineage is the lineage of one object version's load: START now, then
// end with its rows (or its error).
type loadLineage struct {
	e      *Engine
	ld     *loader
	runID  uuid.UUID
	inputs []lineage.Dataset
}

func (ld *loader) startLineage(key string) *loadLineage {
	e := ld.e
	if e.lineage == nil {
		return nil
	}
	l := &loadLineage{e: e, ld: ld, runID: lineage.NewRunID(), inputs: e.objectDataset(key)}
	e.sendLineage(lineage.RunEvent{EventType: lineage.Start, EventTime: e.now(), Run: lineage.Run{RunID: l.runID},
		Job: lineage.Job{Name: "load." + ld.spec.Name}, Inputs: l.inputs, Outputs: l.table(nil)})
	return l
}

// table is the load's output dataset, with its schema, and with rows when
// given.
func (l *loadLineage) table(rows *int64) []lineage.Dataset {
	d, err := lineage.TableDataset(l.e.whURL, l.ld.table.Name)
	if err != nil {
		return nil
	}
	fields := make([]lineage.SchemaField, 0, len(l.ld.table.Columns))
	for _, c := range l.ld.table.Columns {
		fields = append(fields, lineage.SchemaField{Name: c.Name, Type: string(c.Type)})
	}
	d.Facets.Schema = &lineage.SchemaDatasetFacet{Fields: fields}
	if rows != nil {
		d.OutputFacets.OutputStatistics = &lineage.OutputStatisticsOutputDatasetFacet{RowCount: lineage.Rows(*rows)}
	}
	return []lineage.Dataset{d}
}

// end sends COMPLETE with the rows committed, or FAIL with err.
func (l *loadLineage) end(rows int64, err error) {
	if l == nil {
		return
	}
	ev := lineage.RunEvent{EventType: lineage.Complete, EventTime: l.e.now(), Run: lineage.Run{RunID: l.runID},
		Job: lineage.Job{Name: "load." + l.ld.spec.Name}, Inputs: l.inputs, Outputs: l.table(&rows)}
	if err != nil {
		ev.EventType, ev.Outputs = lineage.Fail, l.table(nil)
		ev.Run.Facets.ErrorMessage = lineage.ErrorMessage(err)
	}
	l.e.sendLineage(ev)
}

// jobLineage sends a job run's events once it has ended: START at its
// creation and COMPLETE or FAIL at its end, with its inputs (key) and its
// output folder.
func (e *Engine) jobLineage(r job.Run) {
	if e.lineage == nil {
		return
	}
	e.sendLineageOf("job."+r.Rule, func() []lineage.RunEvent { return e.jobEvents(r) })
}

// jobEvents are a job run's START and end events.
func (e *Engine) jobEvents(r job.Run) []lineage.RunEvent {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		id = uuid.NewSHA1(uuid.NameSpaceURL, []byte("sluice-run:"+r.ID))
	}
	var inputs []lineage.Dataset
	for _, in := range r.Inputs {
		inputs = append(inputs, e.objectDataset(in.Key)...)
	}
	var started, ended []lineage.Dataset
	if j, ok := e.jobSpec(r.Rule); ok {
		started, ended = e.jobOutput(j, r, false), e.jobOutput(j, r, true)
	}
	name := "job." + r.Rule
	start := lineage.RunEvent{EventType: lineage.Start, EventTime: r.Created, Run: lineage.Run{RunID: id}, Job: lineage.Job{Name: name}, Inputs: inputs, Outputs: started}
	end := lineage.RunEvent{EventType: lineage.Complete, EventTime: r.Terminated, Run: lineage.Run{RunID: id}, Job: lineage.Job{Name: name}, Inputs: inputs, Outputs: ended}
	if end.EventTime.IsZero() {
		end.EventTime = e.now()
	}
	if r.State != job.Succeeded {
		end.EventType = lineage.Fail
		end.Run.Facets.ErrorMessage = lineage.ErrorMessage(errors.New(r.Error))
	}
	return []lineage.RunEvent{start, end}
}

func (e *Engine) jobSpec(name string) (pipeline.Job, bool) {
	for _, j := range e.cfg.Spec.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return pipeline.Job{}, false
}

// jobOutput is a run's output dataset: the folder its parts went to (as
// Spark names a directory output), with the curate job's schema and, with
// stats, the number and bytes of its part files (a run's record does not
// count its rows: the output statistics carry none).
func (e *Engine) jobOutput(j pipeline.Job, r job.Run, stats bool) []lineage.Dataset {
	var dir string
	var files, size int64
	for _, o := range r.Outputs {
		if path.Base(o) == "_SUCCESS" {
			continue
		}
		files++
		if dir == "" {
			dir = path.Dir(o)
		}
		if stats {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if st, err := e.Store.Stat(ctx, o); err == nil {
				size += st.Size
			}
			cancel()
		}
	}
	if dir == "" {
		return nil
	}
	ds := e.objectDataset(strings.TrimSuffix(dir, "/"))
	if len(ds) == 0 {
		return nil
	}
	if j.Curate != nil {
		var fields []lineage.SchemaField
		for _, c := range j.Curate.Columns {
			fields = append(fields, lineage.SchemaField{Name: c.Name, Type: string(c.Type)})
		}
		ds[0].Facets.Schema = &lineage.SchemaDatasetFacet{Fields: fields}
	}
	if stats && r.State == job.Succeeded {
		ds[0].OutputFacets.OutputStatistics = &lineage.OutputStatisticsOutputDatasetFacet{FileCount: files, Size: size}
	}
	return ds
}

//! The one admission point: a slot, then the next target, in input order.
//!
//! Slots are taken here and nowhere else, so the targets admitted are always an unbroken
//! prefix of the input. A record gives its slot back once it is written (`--ordered`) or
//! done, so the oldest unwritten record always holds a slot and is running or done: no
//! circular wait can form, whatever the threads' timing.

use std::collections::VecDeque;
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use async_lock::{Semaphore, SemaphoreGuardArc};

use super::cancel::Cancel;
use super::dispatch::Dispatch;
use super::event::{unstarted, Event};
use super::input::Item;
use super::pace::Pace;
use crate::proto::Job;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::Record;
use crate::run::options::RunOptions;

/// A target let in, with the slot it holds until its record is out.
pub struct Admitted {
    pub seq: u64,
    pub index: u64,
    pub token: Vec<u8>,
    pub job: Job,
    pub slot: SemaphoreGuardArc,
    /// `--resume` with `--all-addresses`: addresses already recorded, not probed again.
    pub done: Vec<std::net::SocketAddr>,
}

/// Admitted targets travel to the probe threads in batches of at most this many, so a
/// probe thread is woken once per batch, not per target.
const BATCH: usize = 64;

/// Admits every target of `items` and hands it to a probe thread through `jobs`. After
/// the input ends or a stop, every target already read still gets its record.
pub async fn admit(
    cfg: &RunOptions,
    items: Receiver<Vec<Item>>,
    slots: Arc<Semaphore>,
    jobs: Dispatch<Admitted>,
    events: Sender<Event>,
    cancel: &Cancel,
    pace: &Pace,
) {
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut batch: Vec<Admitted> = Vec::new();
    // Hands the batch on before any wait, so no admitted target waits on admission.
    // Once slots run short, batches are of one or two: the next one starts empty rather
    // than reserving room for a full batch each time.
    fn flush(batch: &mut Vec<Admitted>, jobs: &Dispatch<Admitted>) {
        if !batch.is_empty() {
            jobs.send(std::mem::take(batch));
        }
    }
    loop {
        let slot = match slots.try_acquire_arc() {
            Some(slot) => slot,
            None => {
                flush(&mut batch, &jobs);
                match cancel.guard(slots.acquire_arc()).await {
                    Some(slot) => slot,
                    None => break,
                }
            }
        };
        if queue.is_empty() {
            flush(&mut batch, &jobs);
            match cancel.guard(items.recv()).await {
                Some(Ok(more)) => queue.extend(more),
                Some(Err(_)) | None => break,
            }
        }
        let Some(Item {
            seq,
            index,
            token,
            target,
            done,
        }) = queue.pop_front()
        else {
            continue;
        };
        let job = match target {
            Ok(job) => job,
            Err(why) => {
                let err = ProbeError::new(ErrorKind::InvalidTarget, why);
                let rec = Record::failed(seq, index, token, None, err);
                let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
                continue;
            }
        };
        if pace.is_paced() {
            flush(&mut batch, &jobs);
            if !pace.wait(cancel).await {
                let rec = unstarted(cfg, seq, index, token, job);
                let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
                break;
            }
        }
        batch.push(Admitted {
            seq,
            index,
            token,
            job,
            slot,
            done,
        });
        if batch.len() == BATCH {
            flush(&mut batch, &jobs);
        }
    }
    flush(&mut batch, &jobs);
    drop(jobs);

    // Whatever was read but not admitted: reading stops, each gets its record.
    items.close();
    let leftovers = queue
        .into_iter()
        .chain(std::iter::from_fn(|| items.try_recv().ok()).flatten());
    for item in leftovers {
        let rec = match item.target {
            Err(why) => Record::failed(
                item.seq,
                item.index,
                item.token,
                None,
                ProbeError::new(ErrorKind::InvalidTarget, why),
            ),
            Ok(job) => unstarted(cfg, item.seq, item.index, item.token, job),
        };
        let _ = events.try_send(Event::Done(Box::new(rec), None));
    }
}

//! One message's task: judge it (once, see [`super::recent`]), publish its answer until the broker acknowledges it,
//! and only then hand its receipt back to the source. A panic anywhere in it is caught and answered as IE, because a
//! task that died with its message unanswered would stop the source from making anything after it durable.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio_util::sync::CancellationToken;

use super::publish::{Published, Publisher, Record, Set};
use super::recent::{Claim, Recent};
use crate::app::judge::Judge;
use crate::app::retry::Backoff;
use crate::domain::{RunReport, Script, Status, TestResult};
use crate::ports::{Inbound, Observer, ReportPublisher, Runtime, ScriptSource, describe};

/// What every task needs: the ports, the judge, and what the tasks share.
pub(super) struct Shared<S, P, R: Runtime> {
    /// Where messages come from, and where their receipts go back.
    pub source: Arc<S>,
    /// Where answers go.
    pub publisher: Arc<P>,
    /// Builds and runs scripts, with retries and the circuit breaker.
    pub judge: Judge<R>,
    /// The one memory of recent scripts, so that a script is judged at most once per instance.
    pub recent: Mutex<Recent>,
    /// Fired at the end of the grace period: in-flight scripts stop and release their sandboxes.
    pub abort: CancellationToken,
    /// The wait between attempts to publish.
    pub backoff: Backoff,
    /// The longest one script may take; past it the script is stopped and reported IE.
    pub script_deadline: Duration,
    /// Told what happens to each script, for metrics and lifecycle events; never waited on.
    pub observer: Arc<dyn Observer>,
}

/// How one message's task ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Its receipt was handed back: `status` of the result published, if one was, and whether it was set aside.
    Answered { status: Option<Status>, set_aside: bool },
    /// Shutdown came first; the message stays unanswered for another instance.
    Abandoned,
}

impl Outcome {
    const SILENT: Self = Outcome::Answered {
        status: None,
        set_aside: false,
    };
}

/// The text of a panic's payload, which is a `&str` or a `String` for every `panic!` with a message.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl<S, P, R> Shared<S, P, R>
where
    S: ScriptSource,
    P: ReportPublisher<Raw = S::Raw>,
    R: Runtime,
{
    /// Answers a message, turning a panic into an IE result so that its receipt is still handed back. `waited` is
    /// how long the message had waited in the queue, for the end-to-end time.
    pub async fn answer(&self, receipt: S::Receipt, message: Inbound<S::Raw>, waited: Duration) -> Outcome {
        let taken = Instant::now();
        let panic = match AssertUnwindSafe(self.answer_unguarded(&receipt, &message, waited))
            .catch_unwind()
            .await
        {
            Ok(outcome) => return outcome,
            Err(panic) => panic_text(&*panic),
        };
        tracing::error!(%receipt, %panic, "script task panicked; reporting IE");
        let record = match &message {
            Inbound::Script(script) => Record::Report(RunReport::internal_error(
                script.id.clone(),
                Some(script.language),
                format!("the runner failed while judging this script: {panic}"),
                Vec::new(),
            )),
            Inbound::Rejected { id, language, .. } => Record::Report(RunReport::internal_error(
                id.clone(),
                *language,
                format!("the runner failed while judging this script: {panic}"),
                Vec::new(),
            )),
            Inbound::Unreadable(unreadable) => Record::Aside(Set::Stripped {
                unreadable,
                why: format!("the runner failed while setting this message aside: {panic}"),
            }),
            Inbound::Done => {
                self.hand_back(&receipt);
                return Outcome::SILENT;
            }
        };
        // Publishing is adapter code and may panic too; the message is answered either way.
        let origin = receipt.to_string();
        let published = AssertUnwindSafe(self.publisher(&origin).until_acknowledged(record))
            .catch_unwind()
            .await;
        let outcome = match published {
            Ok(Published::Acknowledged(record)) => match *record {
                Record::Aside(_) => {
                    self.observer.set_aside();
                    Outcome::Answered {
                        status: None,
                        set_aside: true,
                    }
                }
                Record::Report(report) | Record::Replacement(report) => {
                    self.observer.finished(&report, waited + taken.elapsed());
                    Outcome::Answered {
                        status: Some(report.status),
                        set_aside: false,
                    }
                }
            },
            Ok(Published::Refused) => Outcome::SILENT,
            Ok(Published::Abandoned) => return Outcome::Abandoned,
            Err(again) => {
                tracing::error!(%receipt, panic = %panic_text(&*again), "publishing the IE result panicked too; the message is answered without it");
                Outcome::SILENT
            }
        };
        self.hand_back(&receipt);
        outcome
    }

    async fn answer_unguarded(&self, receipt: &S::Receipt, message: &Inbound<S::Raw>, waited: Duration) -> Outcome {
        let started = Instant::now();
        let records = match message {
            Inbound::Script(script) => match self.judge_once(script).await {
                Some(report) => vec![Record::Report(report)],
                None => {
                    tracing::warn!(script_id = %script.id, %receipt, "script abandoned at shutdown");
                    return Outcome::Abandoned;
                }
            },
            Inbound::Rejected { id, language, reason } => {
                vec![Record::Report(RunReport::rejected(
                    id.clone(),
                    *language,
                    reason.clone(),
                ))]
            }
            Inbound::Unreadable(unreadable) => {
                let rejection = unreadable
                    .id
                    .clone()
                    .map(|id| RunReport::rejected(id, None, format!("unreadable message: {}", unreadable.reason)));
                std::iter::once(Record::Aside(Set::Unreadable(unreadable)))
                    .chain(rejection.map(Record::Report))
                    .collect()
            }
            Inbound::Done => Vec::new(),
        };

        let origin = receipt.to_string();
        let publisher = self.publisher(&origin);
        let mut outcome = Outcome::SILENT;
        for record in records {
            let record = match publisher.until_acknowledged(record).await {
                Published::Acknowledged(record) => *record,
                Published::Refused => continue,
                Published::Abandoned => return Outcome::Abandoned,
            };
            match &record {
                Record::Report(report) | Record::Replacement(report) => {
                    tracing::info!(
                        script_id = %report.id,
                        %receipt,
                        status = %report.status,
                        run_ms = report.duration.map(|d| d.as_millis() as u64),
                        total_ms = started.elapsed().as_millis() as u64,
                        "result published"
                    );
                    self.observer.finished(report, waited + started.elapsed());
                    if let Outcome::Answered { status, .. } = &mut outcome {
                        *status = Some(report.status);
                    }
                }
                Record::Aside(_) => {
                    if let Inbound::Unreadable(unreadable) = message {
                        tracing::warn!(reason = %unreadable.reason, %receipt, "message set aside");
                    } else {
                        tracing::warn!(%receipt, "an unanswered script set aside");
                    }
                    self.observer.set_aside();
                    if let Outcome::Answered { set_aside, .. } = &mut outcome {
                        *set_aside = true;
                    }
                }
            }
        }
        self.hand_back(receipt);
        outcome
    }

    /// Judges a script once: the same script delivered again gets the report it already had, or waits for the
    /// judging under way; an id reused for another script gets RJ. `None` means shutdown abandoned it.
    async fn judge_once(&self, script: &Script) -> Option<RunReport> {
        loop {
            let claim = self.recent().claim(script);
            let mut pending = match claim {
                Claim::Conflict(reason) => {
                    return Some(RunReport::rejected(script.id.clone(), Some(script.language), reason));
                }
                Claim::Answered(report) => {
                    tracing::info!(script_id = %script.id, status = %report.status, "delivered again: publishing the report already produced");
                    return Some(*report);
                }
                Claim::Judge(done) => {
                    let report = self.judge_within_deadline(script).await;
                    self.recent().judged(script, report.as_ref());
                    done.send_replace(report.clone());
                    return report;
                }
                Claim::UnderWay(pending) => pending,
            };
            tracing::info!(script_id = %script.id, "delivered again while being judged: waiting for that report");
            let shared = tokio::select! {
                () = self.abort.cancelled() => return None,
                shared = pending.wait_for(Option::is_some) => shared.ok().and_then(|report| report.clone()),
            };
            if shared.is_some() {
                return shared;
            }
            // That judging was abandoned or its task died without a report: forget it and judge here.
            self.recent().forget_pending(&script.id, &pending);
        }
    }

    /// Judges a script, stopping it at the per-script deadline. `None` means shutdown abandoned it.
    async fn judge_within_deadline(&self, script: &Script) -> Option<RunReport> {
        let cancel = self.abort.child_token();
        let timer = {
            let cancel = cancel.clone();
            let deadline = self.script_deadline;
            tokio::spawn(async move {
                tokio::time::sleep(deadline).await;
                cancel.cancel();
            })
        };
        let judged = self.judge.judge(script, &cancel).await;
        timer.abort();
        match judged {
            Ok(report) => Some(report),
            Err(_) if self.abort.is_cancelled() => None,
            Err(_) => Some(
                RunReport::internal_error(
                    script.id.clone(),
                    Some(script.language),
                    format!(
                        "the script ran past this runner's per-script deadline of {} s and was stopped",
                        self.script_deadline.as_secs()
                    ),
                    script.tests.iter().map(TestResult::not_run).collect(),
                )
                .scored(&script.groups),
            ),
        }
    }

    fn publisher<'a>(&'a self, origin: &'a str) -> Publisher<'a, P> {
        Publisher {
            publisher: &self.publisher,
            observer: &*self.observer,
            backoff: self.backoff,
            abort: &self.abort,
            origin,
        }
    }

    fn recent(&self) -> MutexGuard<'_, Recent> {
        crate::sync::lock(&self.recent)
    }

    /// Tells the source that a message is answered; it makes it durable once every earlier message of its stream
    /// is.
    pub fn hand_back(&self, receipt: &S::Receipt) {
        if let Err(error) = self.source.ack(receipt) {
            tracing::warn!(error = %describe(&error), "the answer was not made durable; the message will be delivered again");
        }
    }
}

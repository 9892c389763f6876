//! The TCP side of connection tracking: the state machine and the window checks.
//!
//! The behaviour is Linux's conntrack (`nf_conntrack_proto_tcp`, 6.x), which the kernel oracle
//! (tests/kernel_oracle.rs) replays packet by packet; the code is this project's own, written
//! from that behaviour and from van Rooij's paper it implements:
//!
//! - **Transitions** by direction, flag class (SYN, SYN-ACK, FIN, ACK, RST, none) and state:
//!   a new state, *ignore* (the packet passes and changes nothing: the firewall may be out of
//!   sync with the endpoints, whose answer — a SYN-ACK or an RST — resynchronises it), or
//!   *invalid*.
//! - **Windows**, per direction: the highest sequence sent (`end`), the highest the peer's
//!   window allows (`maxend`), the largest window (`maxwin`), the highest acknowledgement sent
//!   (`maxack`), the window scale once both SYNs offered it. A segment beyond the peer's window
//!   or acknowledging unsent data is invalid; one older than the window (a late retransmission,
//!   an overly delayed ACK) passes without updating anything.
//! - **Resets**: one that does not carry exactly the sequence the peer acknowledged last keeps
//!   an established connection (the endpoint answers it with a challenge ACK, RFC 5961); one
//!   before that sequence is invalid. A reset before any reply ends the connection at once.
//! - **Reopening**: a SYN on a connection in TIME_WAIT or CLOSE replaces it if it was closed
//!   (a FIN seen) or reset by the same side; otherwise it is ignored.

use super::{tcp_flags::*, Dir, Millis, Reject, TcpSeg, TcpState};

const URG: u8 = super::tcp_flags::URG;
const PSH: u8 = super::tcp_flags::PSH;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

/// The widest an acknowledgement may trail the peer's highest sequence (plus the window).
const MAX_ACK_WINDOW: u32 = 66_000;
/// Retransmissions of the same segment after which the timeout shrinks.
const MAX_RETRANS: u8 = 3;
/// The timeout while data is unacknowledged or retransmitted (Linux's `timeout_unacknowledged`
/// and `timeout_max_retrans`).
const UNACK_TIMEOUT: Millis = 300_000;

/// A segment's class for the transition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Syn,
    SynAck,
    Fin,
    Ack,
    Rst,
    None,
}

impl Class {
    fn of(flags: u8) -> Class {
        if flags & RST != 0 {
            Class::Rst
        } else if flags & SYN != 0 {
            if flags & ACK != 0 {
                Class::SynAck
            } else {
                Class::Syn
            }
        } else if flags & FIN != 0 {
            Class::Fin
        } else if flags & ACK != 0 {
            Class::Ack
        } else {
            Class::None
        }
    }
}

/// Flag combinations a segment may carry (PSH, ECE and CWR aside).
pub(super) fn valid_flags(flags: u8) -> bool {
    let f = flags & !(PSH | ECE | CWR);
    [
        SYN,
        SYN | URG,
        SYN | ACK,
        RST,
        RST | ACK,
        FIN | ACK,
        FIN | ACK | URG,
        ACK,
        ACK | URG,
    ]
    .contains(&f)
}

/// What the transition table says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    To(TcpState),
    Ignore,
    Invalid,
}

/// The transition table (`state` is never "none": connections are opened by [`Tcp::open`]).
fn next(dir: Dir, class: Class, state: TcpState) -> Next {
    use Next::*;
    use TcpState::*;
    let orig = dir == Dir::Orig;
    match class {
        Class::Syn => match (state, orig) {
            (SynSent, true) => To(SynSent),
            (SynSent, false) => To(SynSent2),
            (SynSent2, _) => To(SynSent2),
            // A SYN on a finished connection may reopen it (checked by the caller).
            (TimeWait, _) | (Close, true) => To(SynSent),
            (SynRecv | Established | FinWait | CloseWait | LastAck, true) => Ignore,
            _ => Invalid,
        },
        Class::SynAck => match (state, orig) {
            (SynSent2, _) => To(SynRecv),
            (SynRecv, true) => To(SynRecv),
            (SynSent, false) => To(SynRecv),
            // Retransmitted, or answering a SYN the firewall ignored.
            (_, false) => Ignore,
            _ => Invalid,
        },
        Class::Fin => match state {
            SynSent | SynSent2 => Invalid,
            SynRecv | Established => To(FinWait),
            FinWait | CloseWait | LastAck => To(LastAck),
            TimeWait => To(TimeWait),
            Close => To(Close),
        },
        Class::Ack => match (state, orig) {
            (SynSent | SynSent2, true) => Invalid,
            // Maybe a half-open connection's answer.
            (SynSent | SynSent2, false) => Ignore,
            (SynRecv, true) => To(Established),
            (SynRecv, false) => To(SynRecv),
            (Established, _) => To(Established),
            (FinWait | CloseWait, _) => To(CloseWait),
            (LastAck | TimeWait, _) => To(TimeWait),
            (Close, _) => To(Close),
        },
        Class::Rst => To(Close),
        Class::None => Invalid,
    }
}

/// One direction's view (van Rooij's window tracking).
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    /// The next sequence after the highest sent.
    end: u32,
    /// The highest sequence the peer's window allows.
    maxend: u32,
    /// The largest window advertised (scaled); 0: nothing seen from this side yet.
    maxwin: u32,
    /// The highest acknowledgement sent.
    maxack: Option<u32>,
    scale: u8,
    /// The SYN offered window scaling / selective acknowledgements.
    wscale_opt: bool,
    /// Data sent and not acknowledged.
    unacked: bool,
    /// This side began the close (its FIN moved the connection to FIN_WAIT).
    close_init: bool,
}

impl Side {
    /// Set from this side's SYN or SYN-ACK.
    fn init(&mut self, end: u32, win: u16, wscale: Option<u8>) {
        *self = Side {
            end,
            maxend: end,
            maxwin: u32::from(win).max(1),
            wscale_opt: wscale.is_some(),
            scale: wscale.unwrap_or(0).min(14),
            ..Side::default()
        };
    }
}

/// The last segment that moved or was ignored (the resynchronisation and reset checks look
/// at it).
#[derive(Clone, Copy, Debug)]
struct Last {
    class: Class,
    dir: Dir,
    seq: u32,
    ack: u32,
    end: u32,
    win: u16,
    /// An ignored SYN's window-scale option, to resynchronise from.
    wscale: Option<u8>,
    /// An ignored SYN arrived in LAST_ACK: the peer may answer with a challenge ACK that
    /// does not acknowledge the last FIN.
    challenge_ack: bool,
}

/// A TCP connection's tracking state.
#[derive(Clone, Debug)]
pub(super) struct Tcp {
    pub(super) state: TcpState,
    seen: [Side; 2],
    last: Last,
    retrans: u8,
    simultaneous: bool,
    /// The handshake completed (Linux's ASSURED).
    pub(super) assured: bool,
    /// Windows not enforced (the connection is offloaded: the CPU sees only some segments).
    pub(super) liberal: bool,
}

/// What a segment does to a tracked connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Passes; the connection lives on with this timeout from now (None: keep the deadline).
    Accept(Option<Millis>),
    /// Passes and changes nothing (no timeout refresh either).
    Ignore,
    Invalid(Reject),
    /// A SYN replacing a finished connection: forget it and open a new one.
    Reopen,
    /// Passes, and the connection ends now (a reset before any reply).
    Kill,
}

fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

fn seg_end(t: &TcpSeg) -> u32 {
    t.seq
        .wrapping_add(t.payload)
        .wrapping_add(u32::from(t.flags & SYN != 0) + u32::from(t.flags & FIN != 0))
}

/// What the window check makes of a segment.
enum Win {
    Ok,
    /// Outside, but harmlessly: passes, nothing updated.
    Ignore,
    Bad,
}

impl Tcp {
    /// A connection opened by this SYN (the caller checked it is one: [`valid_flags`] and
    /// SYN without ACK).
    pub(super) fn open(t: &TcpSeg) -> Tcp {
        let mut orig = Side::default();
        orig.init(seg_end(t), t.window, t.wscale);
        Tcp {
            state: TcpState::SynSent,
            seen: [orig, Side::default()],
            // The opening SYN is the last segment that moved the connection.
            last: Last {
                class: Class::Syn,
                dir: Dir::Orig,
                seq: 0,
                ack: 0,
                end: 0,
                win: 0,
                wscale: None,
                challenge_ack: false,
            },
            retrans: 0,
            simultaneous: false,
            assured: false,
            liberal: false,
        }
    }

    /// One segment from `dir`; `seen_reply`: a packet of the reply direction passed before.
    pub(super) fn step(&mut self, dir: Dir, t: &TcpSeg, seen_reply: bool) -> Outcome {
        if !valid_flags(t.flags) {
            return Outcome::Invalid(Reject::BadFlags);
        }
        let class = Class::of(t.flags);
        let old = self.state;
        let (s, r) = (dir as usize, dir.other() as usize);
        let mut new = match next(dir, class, old) {
            Next::Invalid => return Outcome::Invalid(Reject::State),
            Next::To(n) => Some(n),
            Next::Ignore => None,
        };
        let mut skip_window = false;
        // A SYN on a finished connection: replace it if it really was closed.
        if new == Some(TcpState::SynSent) && matches!(old, TcpState::TimeWait | TcpState::Close) {
            let closed = self.seen[0].close_init || self.seen[1].close_init;
            let reset_here = self.last.dir == dir && self.last.class == Class::Rst;
            if closed || reset_here {
                return Outcome::Reopen;
            }
            new = None; // otherwise ignored, like any out-of-sync SYN
        }
        let new = match new {
            Some(n) => n,
            None => {
                // A SYN-ACK answering a SYN the table ignored: the endpoints agree on a new
                // connection the firewall missed; take it from the remembered SYN.
                if class == Class::SynAck
                    && self.last.class == Class::Syn
                    && self.last.dir != dir
                    && t.ack == self.last.end
                {
                    let ld = self.last.dir as usize;
                    self.seen[ld].init(self.last.end, self.last.win, self.last.wscale);
                    self.seen[s] = Side::default();
                    self.last.challenge_ack = false;
                    TcpState::SynRecv
                } else {
                    let l = &mut self.last;
                    l.class = class;
                    l.dir = dir;
                    l.seq = t.seq;
                    l.end = seg_end(t);
                    l.win = t.window;
                    if class == Class::Syn && dir == Dir::Orig {
                        // Remembered to resynchronise from, if the peer answers it.
                        l.wscale = t.wscale;
                        l.challenge_ack = old == TcpState::LastAck;
                    }
                    if old == TcpState::SynSent && class == Class::Ack && dir == Dir::Reply {
                        l.ack = t.ack;
                    }
                    return Outcome::Ignore;
                }
            }
        };
        let mut new = new;
        match new {
            TcpState::TimeWait
                if old == TcpState::LastAck
                    && class == Class::Ack
                    && self.last.dir != dir
                    && self.last.class == Class::Syn
                    && self.last.challenge_ack =>
            {
                // The challenge ACK a SYN in LAST_ACK provoked: not the last ACK.
                self.last.challenge_ack = false;
                return Outcome::Ignore;
            }
            TcpState::SynSent2 => self.simultaneous = true,
            TcpState::SynRecv if dir == Dir::Reply && class == Class::Ack && self.simultaneous => {
                new = TcpState::Established;
            }
            TcpState::Close if class == Class::Rst => {
                if matches!(
                    old,
                    TcpState::FinWait
                        | TcpState::LastAck
                        | TcpState::TimeWait
                        | TcpState::Close
                        | TcpState::CloseWait
                ) {
                    // Closing anyway: no check.
                    skip_window = true;
                } else {
                    let established = old == TcpState::Established && self.assured;
                    // Settled by the sequence check: go on to the window check.
                    let mut settled = false;
                    if let (Some(maxack), true) =
                        (self.seen[r].maxack, self.last.class != Class::Syn)
                    {
                        let seq = t.seq;
                        if seq == 0 && !established {
                            settled = true;
                        } else if before(seq, maxack) {
                            return Outcome::Invalid(Reject::Window);
                        } else if !established
                            || seq == maxack
                            || (self.last.class == Class::Ack
                                && self.last.dir == dir
                                && seq == self.last.end)
                        {
                            settled = true;
                        } else {
                            // Not at the acknowledged sequence: the endpoint will answer with
                            // a challenge ACK; stay as we are.
                            new = old;
                        }
                    }
                    // A reset answering a SYN or ACK that passed (the peer's, not its own).
                    let answers_ignored =
                        ((seen_reply && self.last.class == Class::Syn && self.last.dir != dir)
                            || (!self.assured && self.last.class == Class::Ack))
                            && t.ack == self.last.end;
                    let answers_challenge = old == TcpState::SynSent
                        && self.last.class == Class::Ack
                        && self.last.dir == Dir::Reply
                        && t.seq == self.last.ack;
                    if !settled && (answers_ignored || answers_challenge) {
                        skip_window = true;
                    }
                }
            }
            _ => {}
        }
        if !skip_window {
            match self.window(dir, class, t) {
                Win::Ok => {}
                Win::Ignore => return Outcome::Ignore,
                Win::Bad => {
                    // An out-of-window FIN or RST of an established connection is remembered
                    // (unless it answers the peer's own): a SYN reopening after it is then
                    // taken as a new connection.
                    if self.assured
                        && matches!(class, Class::Rst | Class::Fin)
                        && !(self.last.dir != dir
                            && matches!(self.last.class, Class::Fin | Class::Rst))
                    {
                        self.last.class = class;
                        self.last.dir = dir;
                    }
                    return Outcome::Invalid(Reject::Window);
                }
            }
        }
        self.last.class = class;
        self.last.dir = dir;
        self.state = new;
        if old != new && new == TcpState::FinWait {
            self.seen[s].close_init = true;
        }
        let t_new = new.timeout();
        let unacked = self.seen[0].unacked || self.seen[1].unacked;
        let timeout = if self.retrans >= MAX_RETRANS && t_new > UNACK_TIMEOUT {
            UNACK_TIMEOUT
        } else if class == Class::Rst {
            TcpState::Close.timeout()
        } else if (unacked || self.last.win == 0) && t_new > UNACK_TIMEOUT {
            UNACK_TIMEOUT
        } else {
            t_new
        };
        if !seen_reply {
            if class == Class::Rst {
                // Reset before any reply: there never was a connection.
                return Outcome::Kill;
            }
            if class == Class::Syn && old == TcpState::SynSent {
                return Outcome::Accept(None); // a SYN retransmission does not prolong it
            }
        } else if !self.assured
            && matches!(old, TcpState::SynRecv | TcpState::Established)
            && new == TcpState::Established
        {
            self.assured = true;
        }
        Outcome::Accept(Some(timeout))
    }

    /// The window check of an in-table segment, and its bookkeeping.
    fn window(&mut self, dir: Dir, class: Class, t: &TcpSeg) -> Win {
        let si = dir as usize;
        let [mut a, mut b] = self.seen;
        let (s, r) = if si == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let syn = t.flags & SYN != 0;
        let has_ack = t.flags & ACK != 0;
        let mut seq = t.seq;
        let mut end = seg_end(t);
        let mut ack = t.ack;
        let mut win = u32::from(t.window);
        let state = self.state;
        let result = 'check: {
            if s.maxwin == 0 {
                if syn {
                    // This side's SYN-ACK (or simultaneous SYN).
                    s.init(end, t.window, t.wscale);
                    if dir == Dir::Reply && !(s.wscale_opt && r.wscale_opt) {
                        s.scale = 0;
                        r.scale = 0;
                    }
                    if !has_ack {
                        break 'check Win::Ok;
                    }
                } else {
                    // This side's first segment is not a SYN (a reset answering the SYN):
                    // take what it says.
                    s.end = end;
                    let sw = win << s.scale;
                    s.maxwin = sw.max(1);
                    s.maxend = end.wrapping_add(s.maxwin);
                    if r.maxwin == 0 {
                        r.end = ack;
                        r.maxend = ack;
                    } else if ack == r.end.wrapping_add(1) {
                        r.end = r.end.wrapping_add(1);
                    }
                }
            } else if syn
                && after(end, s.end)
                && matches!(state, TcpState::SynSent | TcpState::SynRecv)
            {
                // A new SYN (or SYN-ACK) with a later sequence starts this side over.
                s.init(end, t.window, t.wscale);
                if dir == Dir::Reply && !(s.wscale_opt && r.wscale_opt) {
                    s.scale = 0;
                    r.scale = 0;
                }
                if dir == Dir::Reply && !has_ack {
                    break 'check Win::Ok;
                }
            }
            if !has_ack || (t.flags & (ACK | RST) == ACK | RST && ack == 0) {
                ack = r.end;
            }
            if t.flags & RST != 0 && seq == 0 && state == TcpState::SynSent {
                seq = s.end;
                end = s.end;
            }
            let ack_window = s.maxwin.max(MAX_ACK_WINDOW);
            if !before(seq, s.maxend.wrapping_add(1)) {
                // Beyond the peer's window. Some stacks overshoot it a little: let that pass
                // (and count the data as sent) if all else fits.
                let overshot = end.wrapping_sub(s.maxend).wrapping_add(1);
                let ack_ok = after(ack, r.end.wrapping_sub(ack_window).wrapping_sub(1));
                let in_recv =
                    r.maxwin != 0 && after(end, s.end.wrapping_sub(r.maxwin).wrapping_sub(1));
                if in_recv && ack_ok && overshot <= r.maxwin && before(ack, r.end.wrapping_add(1)) {
                    s.end = end;
                    s.unacked = true;
                    break 'check Win::Ignore;
                }
                break 'check Win::Bad;
            }
            if !before(ack, r.end.wrapping_add(1)) {
                break 'check Win::Bad; // acknowledges data never sent
            }
            if r.maxwin != 0 && !after(end, s.end.wrapping_sub(r.maxwin).wrapping_sub(1)) {
                break 'check Win::Ignore; // an old retransmission
            }
            if !after(ack, r.end.wrapping_sub(ack_window).wrapping_sub(1)) {
                break 'check Win::Ignore; // an overly delayed ACK
            }
            if !syn {
                win <<= s.scale;
            }
            s.maxwin = s.maxwin.max(win);
            if after(end, s.end) {
                s.end = end;
                s.unacked = true;
            }
            if has_ack {
                s.maxack = Some(match s.maxack {
                    Some(m) if !after(ack, m) => m,
                    _ => ack,
                });
            }
            if r.maxwin != 0 && after(end, s.maxend) {
                r.maxwin = r.maxwin.wrapping_add(end.wrapping_sub(s.maxend));
            }
            if after(ack.wrapping_add(win), r.maxend.wrapping_sub(1)) {
                r.maxend = ack.wrapping_add(win);
                if win == 0 {
                    r.maxend = r.maxend.wrapping_add(1);
                }
            }
            if ack == r.end {
                r.unacked = false;
            }
            if class == Class::Ack {
                let l = &self.last;
                if l.dir == dir && l.seq == seq && l.ack == ack && l.end == end && l.win == t.window
                {
                    self.retrans = self.retrans.saturating_add(1);
                } else {
                    self.last.dir = dir;
                    self.last.seq = seq;
                    self.last.ack = ack;
                    self.last.end = end;
                    self.last.win = t.window;
                    self.retrans = 0;
                }
            }
            Win::Ok
        };
        // Whatever was learnt before the verdict stays (as the window state of the kernel).
        self.seen = [a, b];
        match result {
            Win::Bad | Win::Ignore if self.liberal => Win::Ok,
            x => x,
        }
    }
}

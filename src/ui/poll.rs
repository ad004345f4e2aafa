//! The browser's clock for live data: one 5-second tick that every polling resource reads,
//! and a flag that turns true once the page has hydrated.

use leptos::prelude::*;

/// Seed 002 and 003 both refresh every 5 s.
pub const POLL_INTERVAL_MS: u32 = 5_000;

#[derive(Clone, Copy)]
pub struct Poll {
    tick: ReadSignal<u64>,
    hydrated: ReadSignal<bool>,
}

impl Poll {
    /// Changes every [`POLL_INTERVAL_MS`] in the browser; constant during SSR.
    pub fn tick(&self) -> u64 {
        self.tick.get()
    }

    /// False while rendering on the server and at hydration, true afterwards; lets a view
    /// switch to browser-only output (the viewer's time zone) without a hydration mismatch.
    pub fn hydrated(&self) -> bool {
        self.hydrated.get()
    }
}

pub fn provide_poll() {
    let (tick, set_tick) = signal(0_u64);
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        set_hydrated.set(true);
        #[cfg(feature = "hydrate")]
        {
            let interval = gloo_timers::callback::Interval::new(POLL_INTERVAL_MS, move || {
                set_tick.update(|tick| *tick += 1);
            });
            let interval = send_wrapper::SendWrapper::new(interval);
            on_cleanup(move || drop(interval.take()));
            // A marker for the browser tests: the WASM app is live.
            let _ = js_sys::Reflect::set(&window(), &"__jobdeckHydrated".into(), &true.into());
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = set_tick;
    });
    provide_context(Poll { tick, hydrated });
}

pub fn use_poll() -> Poll {
    expect_context::<Poll>()
}

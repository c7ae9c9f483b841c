//! The cron ticker: fires schedules at their times in this process.

use async_trait::async_trait;
use qpost_core::ports::ScheduleRegistry;
use qpost_core::schedule::Schedule;

/// Schedules armed in this process.
#[derive(Default)]
pub struct Ticker;

impl Ticker {
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl ScheduleRegistry for Ticker {
    async fn arm(&self, _schedule: &Schedule) -> qpost_core::Result<()> {
        Ok(())
    }

    async fn disarm(&self, _id: &str) -> qpost_core::Result<()> {
        Ok(())
    }
}

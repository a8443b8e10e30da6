//! The real terminal: raw mode, the alternate screen and mouse reporting on
//! the way in; all of it undone on the way out, on error and on panic.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;

use crate::app::{App, Options};
use crate::{Result, ViewError};

/// How often the live side is polled when no key comes.
pub const TICK: Duration = Duration::from_millis(250);

/// Runs `atm view` on the store in `dir` until `q`.
pub fn run(dir: &Path, opts: Options) -> Result<()> {
    // Open the store first: a bad --store is an error on a clean terminal.
    let mut app = App::open(dir, opts)?;
    if !std::io::stdout().is_terminal() {
        return Err(ViewError::NotATerminal("standard output"));
    }
    if !std::io::stdin().is_terminal() {
        return Err(ViewError::NotATerminal("standard input"));
    }
    enter()?;
    install_panic_hook();
    let result = event_loop(&mut app);
    let restored = leave();
    result.and(restored)
}

fn event_loop(app: &mut App) -> Result<()> {
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;
    let mut last_tick = Instant::now();
    let mut redraw = true;
    loop {
        if redraw {
            term.draw(|f| app.draw(f))?;
        }
        redraw = false;
        let wait = TICK.saturating_sub(last_tick.elapsed());
        if event::poll(wait)? {
            // Take every pending event before drawing again.
            loop {
                redraw |= app.event(event::read()?);
                if app.should_quit() || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if app.should_quit() {
            return Ok(());
        }
        if last_tick.elapsed() >= TICK {
            app.tick();
            last_tick = Instant::now();
            redraw = true;
        }
    }
}

fn enter() -> Result<()> {
    enable_raw_mode()?;
    let mut out = std::io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen, EnableMouseCapture, cursor::Hide) {
        let _ = leave();
        return Err(e.into());
    }
    Ok(())
}

/// Undoes [`enter`]: every step is tried even if one fails. Mouse reporting
/// ends first and what the terminal already sent is read away while raw
/// mode still holds it, so no stray report reaches the shell.
fn leave() -> Result<()> {
    let mut out = std::io::stdout();
    let modes = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
    let deadline = Instant::now() + Duration::from_millis(50);
    while Instant::now() < deadline && event::poll(Duration::from_millis(5)).unwrap_or(false) {
        let _ = event::read();
    }
    let raw = disable_raw_mode();
    modes?;
    raw?;
    Ok(())
}

fn install_panic_hook() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = leave();
        hook(info);
    }));
}

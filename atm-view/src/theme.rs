//! Styles, and their plain versions when `NO_COLOR` is set.

use ratatui::style::{Color, Modifier, Style};

/// The styles the panes use. With `NO_COLOR`, only modifiers (bold,
/// reversed, dim) remain, and the text itself tells states apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colors unless the `NO_COLOR` convention (a non-empty value) says no.
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn up(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn down(self) -> Style {
        self.fg(Color::Red)
    }
    pub fn dim(self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    pub fn header(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn missing(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::ITALIC)
    }
    pub fn unknown(self) -> Style {
        self.dim().add_modifier(Modifier::ITALIC)
    }
    pub fn live(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn border(self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::default().fg(Color::Cyan),
            (true, false) => Style::default().add_modifier(Modifier::BOLD),
            (false, _) => Style::default(),
        }
    }
}

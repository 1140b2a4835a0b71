"""A template's parameters as Slack modal views, and a submitted view's state back as values.

`spec.parameters` are JSON-schema pages in react-jsonschema-form's dialect plus Backstage's
`ui:` extensions (`OwnerPicker`, `EntityPicker`, `RepoUrlPicker`, `EntityNamePicker`). A modal
cannot show or hide inputs as the user types and holds at most 100 blocks, so the form is asked
as a sequence of *screens*: the fields of one page that the answers so far make visible and that
were not asked yet, cut to fit one view. Fields an answer reveals (`dependencies`, `if`/`then`,
the matching `oneOf` branch) come on the next screen. Block Kit is plain data: nothing here calls
Slack or does I/O.

Modules: `fields` (fields, screens, the draft, values by path), `views` (Block Kit and the review
summary), `pickers` (entities a picker offers), `state` (a submitted view back as values, and
its errors). The names the Slack surface uses are here.
"""
from bot.scaffolder.form.fields import MAX_BLOCKS, Draft, Field, Screen, find_field, merge, next_screen
from bot.scaffolder.form.pickers import entity_choices
from bot.scaffolder.form.state import screen_errors, values_from_state
from bot.scaffolder.form.views import ENTITY_OPTIONS, VALUE, enum_options, plain, screen_view, summary

__all__ = ["ENTITY_OPTIONS", "MAX_BLOCKS", "VALUE", "Draft", "Field", "Screen", "entity_choices", "enum_options",
           "find_field", "merge", "next_screen", "plain", "screen_errors", "screen_view", "summary", "values_from_state"]

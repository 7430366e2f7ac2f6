// JavaRosa's side of the behaviour differential (tests/differential/test_javarosa.py).
//
//   java -cp ODK_Validate.jar:<classes> Harness FORM.xml ANSWERS.json
//
// ANSWERS.json is a JSON array of answer sets, each as `mpaka form validate`
// reads them: question name -> value (text; select_multiple space-separated),
// a repeat as an array of objects, one per instance. For each set this loads
// the XForm afresh with JavaRosa (the engine of ODK Collect, as ODK Validate
// ships it), sets the answers the way Collect does, lets JavaRosa recompute,
// and prints one JSON line:
//
//   {"relevant": [...], "values": {...}, "nodes": [...], "errors": [{"question", "instance", "kind"}]}
//
// A select whose choices are filtered is given only the choices its filter
// offers when the walk reaches it, as a person in Collect can pick no other.
//
// - relevant: every group, repeat, question and calculate JavaRosa holds
//   relevant (its own relevance and its ancestors'), as `name` or, inside a
//   repeat, `name[2]`, `name[2][1]` (the instance of each enclosing repeat,
//   from 1, outermost first);
// - nodes: every node of the instance, relevant or not (pyxform writes no
//   node of its own for some groups);
// - values: every node's value as JavaRosa would submit it (the XML text),
//   "" when empty or not relevant;
// - errors: what FormEntryController.answerQuestion reports for each
//   relevant question, walking the form as FormDef.validate does but without
//   stopping at the first: "required" (ANSWER_REQUIRED_BUT_EMPTY) or
//   "constraint" (ANSWER_CONSTRAINT_VIOLATED).
// Or {"exception": "..."} when JavaRosa throws.
//
// The JSON library is the Jackson that the ODK Validate jar contains.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.javarosa.core.model.FormDef;
import org.javarosa.core.model.FormIndex;
import org.javarosa.core.model.GroupDef;
import org.javarosa.core.model.SelectChoice;
import org.javarosa.core.model.condition.EvaluationContext;
import org.javarosa.core.model.condition.IFunctionHandler;
import org.javarosa.core.model.data.IAnswerData;
import org.javarosa.core.model.instance.InstanceInitializationFactory;
import org.javarosa.core.model.instance.TreeElement;
import org.javarosa.core.model.instance.TreeReference;
import org.javarosa.core.reference.ReferenceManager;
import org.javarosa.core.services.PropertyManager;
import org.javarosa.form.api.FormEntryController;
import org.javarosa.form.api.FormEntryModel;
import org.javarosa.form.api.FormEntryPrompt;
import org.javarosa.model.xform.XFormsModule;
import org.javarosa.xform.util.XFormAnswerDataParser;
import org.javarosa.xform.util.XFormUtils;
import org.opendatakit.validate.StubPropertyManager;
import org.opendatakit.validate.StubReferenceFactory;

public class Harness {
    static final ObjectMapper JSON = new ObjectMapper();

    /// Names several questions of the form share (in different groups):
    /// mpaka names those questions by their groups, joined by `.`
    /// (`mother.sex`), as its compile does; see `mpakaName`.
    static Set<String> repeatedNames = new HashSet<>();

    /// The form's instance root (`/data`), where qualified names stop.
    static TreeElement instanceRoot;

    public static void main(String[] args) throws Exception {
        // JavaRosa logs parse warnings on stdout; keep stdout for results.
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, "UTF-8");
        System.setOut(System.err);
        // The same set-up as ODK Validate's FormValidator.validate.
        new XFormsModule().registerModule();
        PropertyManager.setPropertyManager(new StubPropertyManager());
        ReferenceManager.instance().addReferenceFactory(new StubReferenceFactory());

        byte[] xform = Files.readAllBytes(Paths.get(args[0]));
        JsonNode sets = JSON.readTree(new File(args[1]));
        for (JsonNode answers : sets) {
            ObjectNode result;
            try {
                result = fill(xform, (ObjectNode) answers);
            } catch (Throwable e) {
                result = JSON.createObjectNode();
                result.put("exception", e.toString());
            }
            out.println(JSON.writeValueAsString(result));
        }
    }

    static ObjectNode fill(byte[] xform, ObjectNode answers) throws Exception {
        FormDef form = XFormUtils.getFormFromInputStream(new ByteArrayInputStream(xform));
        // ODK Validate's stand-ins for functions only a phone answers.
        form.getEvaluationContext().addFunctionHandler(stub("pulldata", ""));
        form.getEvaluationContext().addFunctionHandler(stub("intersects", Boolean.FALSE));
        form.initialize(true, new InstanceInitializationFactory());
        Map<String, Set<String>> pathsByName = new HashMap<>();
        TreeElement top = form.getMainInstance().getRoot();
        instanceRoot = top;
        for (int i = 0; i < top.getNumChildren(); i++) {
            paths(top.getChildAt(i), "", pathsByName);
        }
        repeatedNames = new HashSet<>();
        pathsByName.forEach((name, found) -> {
            if (found.size() > 1) {
                repeatedNames.add(name);
            }
        });
        FormEntryModel model = new FormEntryModel(form);
        FormEntryController controller = new FormEntryController(model);

        // Set every answer given, in form order, as Collect would: a repeat
        // gets as many instances as the answers hold (a jr:count repeat gets
        // those its count asks for, which JavaRosa creates itself as the walk
        // enters it).
        // Questions not relevant at that moment are set too: JavaRosa keeps
        // their value but reads it as empty while they stay not relevant.
        FormIndex index = FormIndex.createBeginningOfFormIndex();
        while (!(index = model.incrementIndex(index, true)).isEndOfFormIndex()) {
            model.setQuestionIndex(index); // creates a jr:count repeat's instances
            int event = model.getEvent(index);
            TreeReference ref = index.getReference();
            if (event == FormEntryController.EVENT_PROMPT_NEW_REPEAT && !counted(form, index)
                    && given(answers, ref) > ref.getMultLast()) {
                form.createNewRepeat(index);
            } else if (event == FormEntryController.EVENT_QUESTION) {
                JsonNode level = level(answers, ref, ref.size() - 1);
                JsonNode given = level == null ? null : level.get(mpakaName(form.getMainInstance().resolveReference(ref)));
                if (given == null || given.isArray() || given.isObject()) {
                    continue;
                }
                String text = given.isNull() ? "" : given.asText().trim();
                FormEntryPrompt prompt = model.getQuestionPrompt(index);
                text = offeredOnly(prompt, text);
                IAnswerData data = text.isEmpty()
                        ? null
                        : XFormAnswerDataParser.getAnswerData(text, prompt.getDataType(), prompt.getQuestion());
                controller.saveAnswer(index, data, true);
            }
        }

        // pyxform's instance holds one instance of each repeat: remove those
        // beyond what the answers hold (a person would not add them).
        boolean removed = true;
        while (removed) {
            removed = false;
            for (index = FormIndex.createBeginningOfFormIndex();
                    !(index = model.incrementIndex(index, true)).isEndOfFormIndex(); ) {
                TreeReference ref = index.getReference();
                if (model.getEvent(index) == FormEntryController.EVENT_REPEAT && !counted(form, index)
                        && ref.getMultLast() >= given(answers, ref)) {
                    form.deleteRepeat(index);
                    removed = true;
                    break;
                }
            }
        }

        ObjectNode result = JSON.createObjectNode();
        ArrayNode relevant = result.putArray("relevant");
        ArrayNode nodes = result.putArray("nodes");
        ObjectNode values = result.putObject("values");
        TreeElement root = form.getMainInstance().getRoot();
        for (int i = 0; i < root.getNumChildren(); i++) {
            collect(root.getChildAt(i), relevant, values, nodes);
        }

        // FormDef.validate's walk (relevant questions only), every outcome.
        ArrayNode errors = result.putArray("errors");
        controller.jumpToIndex(FormIndex.createBeginningOfFormIndex());
        int event;
        while ((event = controller.stepToNextEvent()) != FormEntryController.EVENT_END_OF_FORM) {
            if (event != FormEntryController.EVENT_QUESTION) {
                continue;
            }
            FormIndex at = model.getFormIndex();
            int status = controller.answerQuestion(at, model.getQuestionPrompt(at).getAnswerValue(), true);
            if (status == FormEntryController.ANSWER_OK) {
                continue;
            }
            ObjectNode error = errors.addObject();
            TreeReference ref = at.getReference();
            error.put("question", mpakaName(form.getMainInstance().resolveReference(ref)));
            List<Integer> instance = instances(form.getMainInstance().resolveReference(ref));
            if (!instance.isEmpty()) {
                ArrayNode numbers = error.putArray("instance");
                instance.forEach(numbers::add);
            }
            error.put("kind", status == FormEntryController.ANSWER_REQUIRED_BUT_EMPTY ? "required" : "constraint");
        }
        return result;
    }

    /// The choices of `text` a person could pick in Collect now: for a
    /// select whose choices are filtered, those its filter offers at this
    /// point of the walk (as ItemsetBinding lists them); any answer
    /// otherwise.
    static String offeredOnly(FormEntryPrompt prompt, String text) {
        if (text.isEmpty() || prompt.getQuestion().getDynamicChoices() == null) {
            return text;
        }
        Set<String> offered = new HashSet<>();
        for (SelectChoice choice : prompt.getSelectChoices()) {
            offered.add(choice.getValue());
        }
        List<String> kept = new ArrayList<>();
        for (String value : text.split("\\s+")) {
            if (offered.contains(value)) {
                kept.add(value);
            }
        }
        return String.join(" ", kept);
    }

    /// Whether the repeat at `index` takes its instances from a jr:count.
    static boolean counted(FormDef form, FormIndex index) {
        return ((GroupDef) form.getChild(index)).getCountReference() != null;
    }

    /// How many instances the answers give the repeat `ref` names.
    static int given(JsonNode answers, TreeReference ref) {
        JsonNode level = level(answers, ref, ref.size() - 1);
        JsonNode instances = level == null ? null : level.get(ref.getNameLast());
        return instances != null && instances.isArray() ? instances.size() : 0;
    }

    /// The answers object for the level `ref` names, down to step `depth`:
    /// the top, or the repeat instance each repeat step points to.
    static JsonNode level(JsonNode answers, TreeReference ref, int depth) {
        JsonNode level = answers;
        for (int step = 1; step < depth; step++) {
            JsonNode member = level.get(ref.getName(step));
            if (member != null && member.isArray()) {
                int mult = ref.getMultiplicity(step);
                level = mult >= 0 && mult < member.size() ? member.get(mult) : null;
                if (level == null) {
                    return null;
                }
            }
        }
        return level;
    }

    static void collect(TreeElement element, ArrayNode relevant, ObjectNode values, ArrayNode nodes) {
        if (element.getMult() == TreeReference.INDEX_TEMPLATE || "meta".equals(element.getName())) {
            return;
        }
        String name = mpakaName(element) + suffix(element);
        nodes.add(name);
        if (element.isRelevant()) {
            relevant.add(name);
        }
        if (element.getNumChildren() == 0) {
            IAnswerData value = element.getValue();
            values.put(name, value == null || !element.isRelevant() ? "" : value.uncast().getString());
        }
        for (int i = 0; i < element.getNumChildren(); i++) {
            collect(element.getChildAt(i), relevant, values, nodes);
        }
    }

    /// Every element's path (without instance numbers), by name.
    static void paths(TreeElement element, String parent, Map<String, Set<String>> found) {
        if ("meta".equals(element.getName()) && parent.isEmpty()) {
            return;
        }
        String path = parent + "/" + element.getName();
        found.computeIfAbsent(element.getName(), k -> new HashSet<>()).add(path);
        for (int i = 0; i < element.getNumChildren(); i++) {
            paths(element.getChildAt(i), path, found);
        }
    }

    /// The element's name as mpaka names its question: a name several
    /// questions share is qualified by the groups above it.
    static String mpakaName(TreeElement element) {
        if (element == null) {
            return "";
        }
        if (!repeatedNames.contains(element.getName())) {
            return element.getName();
        }
        List<String> steps = new ArrayList<>();
        for (TreeElement e = element; e != null && e != instanceRoot; e = (TreeElement) e.getParent()) {
            steps.add(0, e.getName());
        }
        return String.join(".", steps);
    }

    /// The instance (from 1) of every repeat around a node, itself
    /// included, outermost first: as mpaka numbers instances.
    static List<Integer> instances(TreeElement element) {
        List<Integer> found = new ArrayList<>();
        for (TreeElement e = element; e != null && e.getParent() != null; e = (TreeElement) e.getParent()) {
            if (e.isRepeatable()) {
                found.add(0, e.getMult() + 1);
            }
        }
        return found;
    }

    /// `[2][1]` for a node in the first instance of a repeat inside the
    /// second instance of another, "" outside repeats (mpaka's `located`).
    static String suffix(TreeElement element) {
        StringBuilder out = new StringBuilder();
        instances(element).forEach(n -> out.append('[').append(n).append(']'));
        return out.toString();
    }

    static IFunctionHandler stub(String name, Object value) {
        return new IFunctionHandler() {
            public String getName() {
                return name;
            }

            public List<Class[]> getPrototypes() {
                return new ArrayList<>();
            }

            public boolean rawArgs() {
                return true;
            }

            public boolean realTime() {
                return false;
            }

            public Object eval(Object[] args, EvaluationContext ec) {
                return value;
            }
        };
    }
}
